/// The async client: many concurrent requests multiplexed over one connection to reckerd.
///
/// It connects on first use. Connecting and writing to the socket happen on a thread of the
/// client's own and reading on another, never on Swift's cooperative pool. A cancelled task
/// cancels its request at the daemon, which frees the upstream connection at once. When
/// the last reference to the client goes (streams it returned hold one), its connection
/// closes.
public final class ReckerClient: Sendable {
    /// The socket this client talks to.
    public let socketPath: String
    /// Prefix for relative request URLs ("/users/1"), e.g. "https://api.example.com".
    public let baseURL: String?
    let core: ClientCore

    /// A client for the daemon at `socketPath` (default: the same search as the `recker` CLI).
    /// It connects on first use.
    public init(socketPath: String = SocketPaths.clientPath(), baseURL: String? = nil) {
        self.socketPath = socketPath
        self.baseURL = baseURL
        core = ClientCore(socketPath: socketPath)
    }

    deinit { core.shutdown(final: true) }

    /// The absolute URL for `url`: unchanged when it has a scheme, else joined to `baseURL`.
    public func resolve(_ url: String) -> String {
        guard let base = baseURL, !url.contains("://") else { return url }
        let trimmed = base.hasSuffix("/") ? String(base.dropLast()) : base
        return url.hasPrefix("/") ? trimmed + url : trimmed + "/" + url
    }

    /// Sends a request and collects the whole response.
    ///
    /// `timeout` bounds the whole call, from connecting to the last body byte: past it the
    /// request is cancelled at the daemon and the call throws `TIMEOUT`. Cancelling the task
    /// does the same and throws `CANCELLED`.
    public func send(_ request: ReckerRequest, timeout: Duration? = nil) async throws(ReckerError) -> ReckerResponse {
        let pending = PendingStream(kind: .buffered, method: request.head.method)
        return try await guarded(pending, timeout) { () async throws(ReckerError) -> ReckerResponse in
            try await start(request, pending)
            let head = try await pending.head()
            let (body, end) = try await pending.collect()
            return ReckerResponse(head: head, body: body, end: end)
        }
    }

    /// Sends a request and returns as soon as the response head arrives; the body is read
    /// from the returned stream, and the daemon sends only what the reader has taken.
    ///
    /// `timeout` bounds the wait for the head. Dropping the stream before its end, or
    /// cancelling the task that reads it, cancels the request at the daemon.
    public func stream(_ request: ReckerRequest, timeout: Duration? = nil) async throws(ReckerError) -> ReckerResponseStream {
        let pending = PendingStream(kind: .streaming, method: request.head.method)
        let head = try await guarded(pending, timeout) { () async throws(ReckerError) -> ResponseHead in
            try await start(request, pending)
            return try await pending.head()
        }
        return ReckerResponseStream(head: head, handle: StreamHandle(client: self, pending: pending))
    }

    /// The daemon's statistics (docs/PROTOCOL.md §2.12), decoded. `timeout` bounds the call.
    public func stats(timeout: Duration? = nil) async throws(ReckerError) -> ReckerStats {
        try ReckerStats(json: try await stats(format: 0, timeout: timeout))
    }

    /// The daemon's statistics document as sent: `format` 0 JSON, 1 Prometheus text, 2 a
    /// table for people.
    package func stats(format: UInt8, timeout: Duration? = nil) async throws(ReckerError) -> [UInt8] {
        let pending = PendingStream(kind: .stats, method: nil)
        return try await guarded(pending, timeout) { () async throws(ReckerError) -> [UInt8] in
            let link = try await core.register(pending)
            try core.send([.statsRequest(stream: pending.id, format: format)], of: pending, on: link)
            return try await pending.statsDocument()
        }
    }

    /// The JSON statistics document as bytes, as earlier versions returned it.
    package func stats() async throws(ReckerError) -> [UInt8] {
        try await stats(format: 0)
    }

    /// The User-Agent sent when a request names none: `ReckerProtocol/VERSION`.
    public static let userAgent = "ReckerProtocol/\(ReckerVersion.release)"

    /// Closes the connection; requests in flight fail with `CONNECTION_LOST`. The next
    /// request connects again.
    public func close() {
        core.shutdown(final: false)
    }

    // MARK: - internals

    /// Registers the request, sends its head, then its body as the daemon grants window.
    private func start(_ original: ReckerRequest, _ pending: PendingStream) async throws(ReckerError) {
        var request = original
        request.head.url = resolve(original.head.url)
        // Many APIs refuse a request without a User-Agent; a caller's own (even empty) wins.
        if !request.head.headers.contains(where: { $0.name.lowercased() == "user-agent" }) {
            request.head.headers.append((name: "User-Agent", value: ReckerClient.userAgent))
        }
        let link = try await core.register(pending)
        let id = pending.id
        guard let body = request.body, !body.isEmpty else {
            try core.send([.requestHead(stream: id, request.head, endRequest: true)], of: pending, on: link)
            return
        }
        try core.send([.requestHead(stream: id, request.head, endRequest: false)], of: pending, on: link)
        let maxChunk = max(1, Int(link.connection.welcome.maxFrame) - Frame.headerSize)
        var offset = 0
        while offset < body.count {
            let allowed = try await pending.takeSendWindow(max: min(maxChunk, body.count - offset))
            let end = offset + allowed
            try core.send([.requestBody(stream: id, Array(body[offset ..< end]), endRequest: end == body.count)],
                          of: pending, on: link)
            offset = end
        }
    }

    /// Runs `operation` for `pending`, cancelling the stream when the task is cancelled or
    /// `timeout` passes first.
    private func guarded<T>(_ pending: PendingStream, _ timeout: Duration?,
                            _ operation: () async throws(ReckerError) -> T) async throws(ReckerError) -> T {
        let core = self.core
        let timer = timeout.map { limit in
            Task {
                try? await Task.sleep(for: limit)
                guard !Task.isCancelled else { return }
                core.cancel(pending, ReckerError(.timeout, "no answer within \(limit) (the call's timeout)",
                                                 mayHaveReachedUpstream: true, retrySafe: false))
            }
        }
        defer { timer?.cancel() }
        let result: Result<T, ReckerError> = await withTaskCancellationHandler {
            do throws(ReckerError) { return .success(try await operation()) } catch { return .failure(error) }
        } onCancel: {
            core.cancel(pending, ReckerError(.cancelled, "the task was cancelled", mayHaveReachedUpstream: true, retrySafe: false))
        }
        return try result.get()
    }
}
