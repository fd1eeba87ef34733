import CReckerHTTP

/// One client connection's request parser: libhttp-parser through the CReckerHTTP shim.
/// It stops (pauses) after each request head and after each complete request, so the
/// connection decides before the parser goes on; body pieces are collected meanwhile.
/// Loop-confined, like the connection that owns it.
final class HTTPRequestParser {
    private var raw: OpaquePointer?
    private(set) var request = HTTPParsedRequest()
    private var url: [UInt8] = []
    private var field: [UInt8] = []
    private var value: [UInt8] = []
    private var inValue = false
    /// Set when the head, or the whole request, has been parsed (the parser is paused).
    private(set) var headComplete = false
    private(set) var messageComplete = false
    /// Body pieces parsed since the last `takeBody`, de-chunked.
    private var body: [[UInt8]] = []

    init?() {
        let callback: recker_http_callback = { context, event, at, length in
            let parser = Unmanaged<HTTPRequestParser>.fromOpaque(context!).takeUnretainedValue()
            return parser.event(event, at, length)
        }
        raw = recker_http_new(Unmanaged.passUnretained(self).toOpaque(), callback)
        guard raw != nil else { return nil }
    }

    deinit { if let raw { recker_http_free(raw) } }

    /// Parses from `bytes`; returns how many were taken. Stops early when paused.
    func execute(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard let raw, !bytes.isEmpty else { return 0 }
        return recker_http_execute(raw, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
    }

    /// What went wrong, if anything: nil when the parser is fine or only paused.
    var failure: (name: String, description: String)? {
        guard let raw else { return ("NO_MEMORY", "no parser") }
        let e = recker_http_errno(raw)
        guard e != RECKER_HTTP_ERRNO_OK && e != RECKER_HTTP_ERRNO_PAUSED else { return nil }
        return (String(cString: recker_http_errno_name(e)), String(cString: recker_http_errno_description(e)))
    }

    var isPaused: Bool { raw.map { recker_http_errno($0) == RECKER_HTTP_ERRNO_PAUSED } ?? false }

    /// Goes on after a pause at a head (`headComplete` is cleared).
    func continueAfterHead() {
        headComplete = false
        if let raw { recker_http_pause(raw, 0) }
    }

    /// Goes on to the next request after a pause at a complete one.
    func continueAfterMessage() {
        messageComplete = false
        headComplete = false
        if let raw { recker_http_pause(raw, 0) }
    }

    func takeBody() -> [[UInt8]] {
        defer { body = [] }
        return body
    }

    private func event(_ event: Int32, _ at: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
        let bytes = UnsafeRawBufferPointer(start: at, count: at == nil ? 0 : length)
        switch UInt32(event) {
        case RECKER_HTTP_MESSAGE_BEGIN.rawValue:
            request = HTTPParsedRequest()
            url = []
            field = []
            value = []
            inValue = false
        case RECKER_HTTP_URL.rawValue:
            url.append(contentsOf: bytes)
        case RECKER_HTTP_HEADER_FIELD.rawValue:
            if inValue { endHeader() }
            field.append(contentsOf: bytes)
        case RECKER_HTTP_HEADER_VALUE.rawValue:
            inValue = true
            value.append(contentsOf: bytes)
        case RECKER_HTTP_HEADERS_COMPLETE.rawValue:
            if inValue || !field.isEmpty { endHeader() }
            guard let raw else { return 1 }
            request.method = String(cString: recker_http_method(raw))
            request.target = String(decoding: url, as: UTF8.self)
            request.major = UInt(recker_http_major(raw))
            request.minor = UInt(recker_http_minor(raw))
            request.keepAlive = recker_http_keep_alive(raw) != 0
            request.chunked = recker_http_chunked(raw) != 0
            request.contentLength = recker_http_has_content_length(raw) != 0 ? recker_http_content_length(raw) : nil
            request.upgrade = recker_http_upgrade(raw) != 0
            headComplete = true
            recker_http_pause(raw, 1)
        case RECKER_HTTP_BODY.rawValue:
            body.append(Array(bytes))
        case RECKER_HTTP_MESSAGE_COMPLETE.rawValue:
            messageComplete = true
            if let raw { recker_http_pause(raw, 1) }
        default:
            break
        }
        return 0
    }

    private func endHeader() {
        let name = String(decoding: field, as: UTF8.self)
        var v = value[...]
        while let last = v.last, last == 0x20 || last == 0x09 { v = v.dropLast() }
        while let first = v.first, first == 0x20 || first == 0x09 { v = v.dropFirst() }
        request.headers.append((name, String(decoding: v, as: UTF8.self)))
        field = []
        value = []
        inValue = false
    }
}
