import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An HTTP request to send through reckerd.
public struct ReckerRequest: Sendable {
    public var head: RequestHead
    /// The body, sent with a Content-Length; nil sends none.
    public var body: [UInt8]?

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [],
                body: [UInt8]? = nil, options: RequestOptions = RequestOptions()) {
        head = RequestHead(method: method, url: url, headers: headers,
                           bodyLength: body.map { UInt64($0.count) }, options: options)
        self.body = body
    }
}

/// A whole response: status, headers, connection facts, and the body.
public struct ReckerResponse: Sendable {
    public var head: ResponseHead
    public var body: [UInt8]
    public var end: ResponseEnd
    public var status: Int { Int(head.status) }
}

/// The async client: many concurrent requests multiplexed over one connection to reckerd.
///
/// Thread confinement: all mutable state lives in `state` behind a mutex; one reader thread
/// owns reading from the socket. Writes happen under the mutex, so frames never interleave.
public final class ReckerClient: Sendable {
    /// The socket this client talks to.
    public let socketPath: String
    /// Prefix for relative request URLs ("/users/1"), e.g. "https://api.example.com".
    public let baseURL: String?
    private let state = Mutex(State())

    /// A client for the daemon at `socketPath` (default: the same search as the `recker` CLI).
    /// It connects on first use.
    public init(socketPath: String = SocketPaths.clientPath(), baseURL: String? = nil) {
        self.socketPath = socketPath
        self.baseURL = baseURL
    }

    /// The absolute URL for `url`: unchanged when it has a scheme, else joined to `baseURL`.
    public func resolve(_ url: String) -> String {
        guard let base = baseURL, !url.contains("://") else { return url }
        let trimmed = base.hasSuffix("/") ? String(base.dropLast()) : base
        return url.hasPrefix("/") ? trimmed + url : trimmed + "/" + url
    }

    deinit { close() }

    /// Sends a request and collects the whole response.
    public func send(_ request: ReckerRequest) async throws -> ReckerResponse {
        let (stream, _) = try await start(request, kind: .buffered)
        let head = try await stream.head()
        return try await stream.collect(head: head)
    }

    /// Sends a request and returns as soon as the response head arrives; the body is read
    /// from the returned stream, and the daemon sends only what the reader has taken.
    public func stream(_ request: ReckerRequest) async throws -> ReckerResponseStream {
        let (stream, _) = try await start(request, kind: .streaming)
        let head = try await stream.head()
        return ReckerResponseStream(head: head, pending: stream, client: self)
    }

    /// The daemon's statistics document (docs/PROTOCOL.md §2.12): `format` 0 is JSON,
    /// 1 Prometheus text, 2 a table.
    public func stats(format: UInt8 = 0) async throws -> [UInt8] {
        let pending = PendingStream(kind: .stats)
        let id = try register(pending)
        try write([.statsRequest(stream: id, format: format)])
        return try await pending.statsBody()
    }

    /// Closes the connection; requests in flight fail with `CONNECTION_LOST`.
    public func close() {
        state.withLock { s in
            s.connection?.socket.shutdown()
        }
    }

    // MARK: - internals

    struct State: ~Copyable {
        var connection: ReckerConnection?
        var streams: [UInt32: PendingStream] = [:]
        var nextStream: UInt32 = 1
    }

    private func start(_ original: ReckerRequest, kind: PendingStream.Kind) async throws -> (PendingStream, UInt32) {
        var request = original
        request.head.url = resolve(original.head.url)
        let pending = PendingStream(kind: kind)
        let id = try register(pending)
        guard let body = request.body, !body.isEmpty else {
            try write([.requestHead(stream: id, request.head, endRequest: true)])
            return (pending, id)
        }
        try write([.requestHead(stream: id, request.head, endRequest: false)])
        let maxChunk = state.withLock { s in Int(s.connection?.welcome.maxFrame ?? UInt32(Frame.defaultMaxLength)) } - Frame.headerSize
        var offset = 0
        while offset < body.count {
            let allowed = try await pending.takeSendWindow(max: min(maxChunk, body.count - offset))
            let end = offset + allowed
            try write([.requestBody(stream: id, Array(body[offset ..< end]), endRequest: end == body.count)])
            offset = end
        }
        return (pending, id)
    }

    /// Connects if needed and assigns a stream id.
    private func register(_ pending: PendingStream) throws -> UInt32 {
        try state.withLock { s throws -> UInt32 in
            if s.connection == nil {
                let c = try ReckerConnection(socketPath: socketPath)
                s.connection = c
                startReader(c)
            }
            guard s.streams.count < Int(s.connection!.welcome.maxInFlight) else {
                throw ReckerError(.tooManyInFlight, "more than \(s.connection!.welcome.maxInFlight) requests in flight")
            }
            var id = s.nextStream
            while s.streams[id] != nil || id == 0 { id &+= 1 }
            s.nextStream = id &+ 1
            pending.id = id
            pending.sendWindow = Int(s.connection!.welcome.initialWindow)
            s.streams[id] = pending
            return id
        }
    }

    func write(_ messages: [Message]) throws {
        try state.withLock { s throws in
            guard let c = s.connection else { throw ReckerError(.connectionLost, "not connected to reckerd") }
            try c.send(messages)
        }
    }

    /// Grants the daemon `n` more bytes on a stream once the reader has taken them.
    func grant(_ n: Int, stream id: UInt32) {
        guard n > 0 else { return }
        try? write([.windowUpdate(stream: id, increment: UInt32(n))])
    }

    private func startReader(_ connection: ReckerConnection) {
        let box = Unmanaged.passRetained(ReaderContext(client: self, connection: connection))
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { raw in
            #if canImport(Glibc)
            let ctx = Unmanaged<ReaderContext>.fromOpaque(raw!).takeRetainedValue()
            #else
            let ctx = Unmanaged<ReaderContext>.fromOpaque(raw).takeRetainedValue()
            #endif
            ctx.client?.readLoop(ctx.connection)
            return nil
        }, box.toOpaque())
        if rc == 0 { pthread_detach(tid) } else { box.release() }
    }

    private func readLoop(_ connection: ReckerConnection) {
        var failure = ReckerError(.connectionLost, "reckerd closed the connection")
        while true {
            let message: Message
            do { message = try connection.receive() } catch { failure = error; break }
            if case .error(0, let e) = message { failure = e; break }
            dispatch(message)
        }
        let mine = ObjectIdentifier(connection)
        let orphans = state.withLock { s -> [PendingStream] in
            if let c = s.connection, ObjectIdentifier(c) == mine { s.connection = nil }
            defer { s.streams.removeAll() }
            return Array(s.streams.values)
        }
        connection.close()
        for p in orphans { p.fail(failure) }
    }

    private func dispatch(_ message: Message) {
        let id = message.stream
        guard let pending = state.withLock({ s in s.streams[id] }) else { return }
        switch message {
        case .responseHead(_, let h): pending.deliverHead(h)
        case .responseBody(_, let data):
            if pending.deliverBody(data) { grant(data.count, stream: id) }
        case .responseEnd(_, let e):
            forget(id)
            pending.finish(e)
        case .error(_, let e):
            forget(id)
            pending.fail(e)
        case .windowUpdate(_, let inc): pending.addSendWindow(Int(inc))
        case .statsResponse(_, let json, let more):
            if !more { forget(id) }
            pending.deliverStats(json, more: more)
        default: break
        }
    }

    private func forget(_ id: UInt32) { _ = state.withLock { s in s.streams.removeValue(forKey: id) } }
}

private final class ReaderContext: @unchecked Sendable {
    weak var client: ReckerClient?
    let connection: ReckerConnection
    init(client: ReckerClient, connection: ReckerConnection) {
        self.client = client
        self.connection = connection
    }
}
