import Synchronization

/// One request's (or stats request's) side of the client: where the reader thread puts
/// what arrives, and where the task waiting for it picks it up. Every event bumps a
/// generation and wakes the waiters, which look again at what they wait for.
final class PendingStream: Sendable {
    enum Kind { case buffered, streaming, stats }

    let kind: Kind
    /// The request's method (nil for stats): whether it is safe to retry when the
    /// connection is lost after it went out.
    let method: String?
    private let fields = Mutex(Fields())

    struct Fields {
        var id: UInt32 = 0
        var sendWindow = 0
        /// The first frame (REQUEST_HEAD or STATS_REQUEST) is on its way to the daemon.
        var sent = false
        var head: ResponseHead?
        var chunks: [[UInt8]] = []
        var nextChunk = 0
        var body: [UInt8] = []
        var end: ResponseEnd?
        var statsDone = false
        var error: ReckerError?
        var generation = 0
        var waiters: [CheckedContinuation<Void, Never>] = []

        var finished: Bool { end != nil || statsDone }

        mutating func wake() {
            generation &+= 1
            for w in waiters { w.resume() }
            waiters.removeAll()
        }
    }

    init(kind: Kind, method: String?) {
        self.kind = kind
        self.method = method
    }

    /// The stream id, 0 until the stream is registered on a connection.
    var id: UInt32 { fields.withLock { $0.id } }

    /// Neither finished nor failed.
    var isLive: Bool { fields.withLock { $0.error == nil && !$0.finished } }

    // MARK: events

    /// Registered on a connection as stream `id`; false when the stream failed before.
    func registered(id: UInt32, window: Int) -> Bool {
        fields.withLock { f in
            guard f.error == nil else { return false }
            f.id = id
            f.sendWindow = window
            f.wake()
            return true
        }
    }

    /// Runs `send` (which queues a frame of this stream) unless the stream has failed,
    /// marking the stream as sent; under the stream's lock, so a CANCEL queued by `fail`
    /// always follows it.
    func whileLive(_ send: () -> Void) throws(ReckerError) {
        try fields.withLock { f throws(ReckerError) in
            if let e = f.error { throw e }
            f.sent = true
            send()
        }
    }

    func deliverHead(_ h: ResponseHead) {
        fields.withLock { f in
            f.head = h
            f.wake()
        }
    }

    /// Returns whether the bytes count as consumed now (buffered responses), so the reader
    /// grants them back at once; streaming responses grant when their reader takes them.
    func deliverBody(_ data: [UInt8]) -> Bool {
        fields.withLock { f in
            guard f.error == nil else { return false }
            if kind == .streaming {
                f.chunks.append(data)
            } else {
                f.body.append(contentsOf: data)
            }
            f.wake()
            return kind != .streaming
        }
    }

    func finish(_ e: ResponseEnd) {
        fields.withLock { f in
            guard f.error == nil else { return }
            f.end = e
            f.wake()
        }
    }

    /// A part of the stats document; the document is whole with the part without `more`.
    func deliverStats(_ part: [UInt8], more: Bool) {
        fields.withLock { f in
            guard f.error == nil else { return }
            f.body.append(contentsOf: part)
            if !more {
                f.statsDone = true
                f.wake()
            }
        }
    }

    func addSendWindow(_ n: Int) {
        fields.withLock { f in
            f.sendWindow += n
            f.wake()
        }
    }

    /// Fails the stream unless it has finished or failed already. Returns nil when nothing
    /// changed, else whether its first frame had been sent (so the daemon knows the stream).
    @discardableResult
    func fail(_ e: ReckerError) -> Bool? {
        fields.withLock { f in
            guard f.error == nil && !f.finished else { return nil }
            var e = e
            if !f.sent {
                e.mayHaveReachedUpstream = false
                e.retrySafe = true
            } else if e.code == .connectionLost {
                // The request went out and the daemon's answer was lost with the
                // connection: it may have reached the upstream (PROTOCOL.md §5).
                e.mayHaveReachedUpstream = true
                e.retrySafe = method.map(RequestValidator.isSafeMethod) ?? true
            }
            f.error = e
            f.wake()
            return f.sent
        }
    }

    // MARK: the waiting task's side

    /// Waits until `ready` has an answer: a value, or the stream's error.
    private func wait<T>(_ ready: (inout Fields) -> Result<T, ReckerError>?) async throws(ReckerError) -> T {
        while true {
            let (result, generation) = fields.withLock { f in (ready(&f), f.generation) }
            if let result { return try result.get() }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                fields.withLock { f in
                    if f.generation != generation { c.resume() } else { f.waiters.append(c) }
                }
            }
        }
    }

    /// Until the stream is registered on a connection; its id.
    func waitRegistered() async throws(ReckerError) -> UInt32 {
        try await wait { f in
            if let e = f.error { return .failure(e) }
            return f.id != 0 ? .success(f.id) : nil
        }
    }

    func head() async throws(ReckerError) -> ResponseHead {
        try await wait { f in
            if let e = f.error { return .failure(e) }
            return f.head.map { .success($0) }
        }
    }

    /// The whole body and the end totals of a buffered response.
    func collect() async throws(ReckerError) -> ([UInt8], ResponseEnd) {
        try await wait { f in
            if let e = f.error { return .failure(e) }
            return f.end.map { .success((f.body, $0)) }
        }
    }

    /// The next body chunk of a streaming response, nil at its end.
    func nextChunk() async throws(ReckerError) -> [UInt8]? {
        try await wait { f in
            if let e = f.error { return .failure(e) }
            if f.nextChunk < f.chunks.count {
                let chunk = f.chunks[f.nextChunk]
                f.nextChunk += 1
                if f.nextChunk == f.chunks.count {
                    f.chunks.removeAll(keepingCapacity: true)
                    f.nextChunk = 0
                }
                return .success(chunk)
            }
            return f.end == nil ? nil : .success(nil)
        }
    }

    func statsDocument() async throws(ReckerError) -> [UInt8] {
        try await wait { f in
            if let e = f.error { return .failure(e) }
            return f.statsDone ? .success(f.body) : nil
        }
    }

    /// Waits until the daemon grants send window, then takes up to `max` bytes of it.
    func takeSendWindow(max: Int) async throws(ReckerError) -> Int {
        try await wait { f in
            if let e = f.error { return .failure(e) }
            guard f.sendWindow > 0 else { return nil }
            let n = min(f.sendWindow, max)
            f.sendWindow -= n
            return .success(n)
        }
    }
}
