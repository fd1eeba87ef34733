import CReckerCurl
import ReckerProtocol

/// One request in flight inside the engine: its easy handle and everything between the
/// client and libcurl. Engine-thread confined, like the engine's other state.
final class Transfer {
    let id: TransferID
    let request: EngineRequest
    let sink: any TransferSink
    let easy: EasyHandle
    unowned let engine: CurlEngine
    var headerList: UnsafeMutablePointer<curl_slist>?

    /// Header lines of the response being received; reset at each status line, so only the
    /// final response's head (after 1xx and followed redirects) is kept.
    var responseHeaders: [(name: String, value: String)] = []
    var headSent = false
    var startedAt: UInt64 = 0

    /// Request body chunks from the client not yet taken by libcurl.
    var uploadQueue: [[UInt8]] = []
    var uploadOffset = 0
    var uploadEnded = false
    var uploadReceived: UInt64 = 0
    var sendPaused = false

    /// Response bytes delivered to the sink and not yet written to the client.
    var outstanding = 0
    var recvPaused = false
    var bodyBytes: UInt64 = 0
    /// The connection this request went out on, once libcurl has picked it.
    var connection: ConnectionID?
    /// A request the engine made itself to open a warm connection; no client waits for it.
    var isWarmUp = false
    var finished = false
    /// libcurl writes its detailed error text here (CURLOPT_ERRORBUFFER).
    let errorBuffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    init(id: TransferID, request: EngineRequest, sink: any TransferSink, easy: EasyHandle, engine: CurlEngine) {
        self.id = id
        self.request = request
        self.sink = sink
        self.easy = easy
        self.engine = engine
        errorBuffer.initialize(repeating: 0)
    }

    deinit { errorBuffer.deallocate() }

    /// The pause bits libcurl should hold now.
    var pauseMask: Int32 {
        (recvPaused ? Int32(CURLPAUSE_RECV) : 0) | (sendPaused ? Int32(CURLPAUSE_SEND) : 0)
    }

    // MARK: callbacks, called by libcurl on the engine thread

    func onHeader(_ line: UnsafeBufferPointer<UInt8>) {
        var end = line.count
        while end > 0 && (line[end - 1] == 0x0A || line[end - 1] == 0x0D) { end -= 1 }
        guard end > 0 else { return }
        let text = line[0 ..< end]
        if text.starts(with: Array("HTTP/".utf8)) {
            responseHeaders.removeAll(keepingCapacity: true)
            return
        }
        guard let colon = text.firstIndex(of: UInt8(ascii: ":")) else { return }
        var valueStart = colon + 1
        while valueStart < end && (text[valueStart] == 0x20 || text[valueStart] == 0x09) { valueStart += 1 }
        responseHeaders.append((name: String(decoding: text[..<colon], as: UTF8.self),
                                value: String(decoding: text[valueStart ..< end], as: UTF8.self)))
    }

    /// Returns the bytes taken, or CURL_WRITEFUNC_PAUSE when the client is too far behind.
    func onBody(_ data: UnsafeBufferPointer<UInt8>) -> Int {
        if outstanding >= engine.options.maxResponseBuffer {
            recvPaused = true
            return Int(CURL_WRITEFUNC_PAUSE)
        }
        sendHeadIfNeeded()
        outstanding += data.count
        bodyBytes += UInt64(data.count)
        engine.count(request.target.domain) { $0.bytesIn += data.count }
        sink.transferBody(id, Array(data))
        return data.count
    }

    /// Fills libcurl's upload buffer from the client's chunks, or pauses until more arrive.
    func onRead(_ buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
        var written = 0
        while written < buffer.count, let chunk = uploadQueue.first {
            let n = min(buffer.count - written, chunk.count - uploadOffset)
            for i in 0 ..< n { buffer[written + i] = chunk[uploadOffset + i] }
            written += n
            uploadOffset += n
            if uploadOffset == chunk.count {
                uploadQueue.removeFirst()
                uploadOffset = 0
            }
        }
        if written > 0 {
            sink.transferBodySent(id, bytes: written)
            return written
        }
        if uploadEnded { return 0 }
        sendPaused = true
        return Int(CURL_READFUNC_PAUSE)
    }

    func sendHeadIfNeeded() {
        guard !headSent else { return }
        headSent = true
        let status = easy.long(CURLINFO_RESPONSE_CODE)
        let version: UInt8 = switch easy.long(CURLINFO_HTTP_VERSION) {
        case Int(CURL_HTTP_VERSION_1_0): 10
        case Int(CURL_HTTP_VERSION_2_0): 20
        case Int(CURL_HTTP_VERSION_3): 30
        default: 11
        }
        let reused = easy.long(CURLINFO_NUM_CONNECTS) == 0
        engine.learned(version: version, domain: request.target.domain)
        let connect = easy.offset(CURLINFO_CONNECT_TIME_T)
        let appConnect = easy.offset(CURLINFO_APPCONNECT_TIME_T)
        let firstByte = easy.offset(CURLINFO_STARTTRANSFER_TIME_T)
        let head = ResponseHead(
            status: UInt16(clamping: status), httpVersion: version, connectionID: connection ?? 0, reused: reused,
            queueMicros: UInt32(clamping: (startedAt &- request.arrival) / 1000),
            connectMicros: reused ? 0 : UInt32(clamping: connect),
            tlsMicros: reused || appConnect == 0 ? 0 : UInt32(clamping: max(0, appConnect - connect)),
            firstByteMicros: UInt32(clamping: firstByte), headers: responseHeaders)
        sink.transferHead(id, head)
    }
}
