import Synchronization

/// One request's side of the client: where the reader thread puts what arrives and where
/// the awaiting task picks it up. All fields are guarded by `lock`.
final class PendingStream: @unchecked Sendable {
    enum Kind { case buffered, streaming, stats }

    let kind: Kind
    private let lock = Mutex(())
    private var head: ResponseHead?
    private var headWaiter: CheckedContinuation<ResponseHead, any Error>?
    private var chunks: [[UInt8]] = []
    private var chunkWaiter: CheckedContinuation<[UInt8]?, any Error>?
    private var end: ResponseEnd?
    private var endWaiter: CheckedContinuation<ResponseEnd, any Error>?
    private var error: ReckerError?
    private var stats: [UInt8]?
    private var statsParts: [UInt8] = []
    private var statsWaiter: CheckedContinuation<[UInt8], any Error>?
    var id: UInt32 = 0
    var sendWindow = 0
    private var windowWaiter: CheckedContinuation<Void, any Error>?
    private var buffered: [UInt8] = []

    init(kind: Kind) { self.kind = kind }

    // MARK: reader thread side

    func deliverHead(_ h: ResponseHead) {
        lock.withLock { _ in
            head = h
            headWaiter?.resume(returning: h)
            headWaiter = nil
        }
    }

    /// Returns whether the bytes count as consumed now (buffered responses), so the reader
    /// grants them back at once; streaming responses grant when their reader takes them.
    func deliverBody(_ data: [UInt8]) -> Bool {
        lock.withLock { _ in
            if kind == .buffered {
                buffered.append(contentsOf: data)
                return true
            }
            if let w = chunkWaiter {
                chunkWaiter = nil
                w.resume(returning: data)
            } else {
                chunks.append(data)
            }
            return false
        }
    }

    func finish(_ e: ResponseEnd) {
        lock.withLock { _ in
            end = e
            endWaiter?.resume(returning: e)
            endWaiter = nil
            chunkWaiter?.resume(returning: nil)
            chunkWaiter = nil
        }
    }

    func fail(_ e: ReckerError) {
        lock.withLock { _ in
            guard end == nil else { return }
            error = e
            headWaiter?.resume(throwing: e); headWaiter = nil
            chunkWaiter?.resume(throwing: e); chunkWaiter = nil
            endWaiter?.resume(throwing: e); endWaiter = nil
            statsWaiter?.resume(throwing: e); statsWaiter = nil
            windowWaiter?.resume(throwing: e); windowWaiter = nil
        }
    }

    /// A part of the stats document; the whole goes to the waiter with the last part.
    func deliverStats(_ json: [UInt8], more: Bool) {
        lock.withLock { _ in
            statsParts += json
            guard !more else { return }
            stats = statsParts
            statsWaiter?.resume(returning: statsParts)
            statsWaiter = nil
        }
    }

    func addSendWindow(_ n: Int) {
        lock.withLock { _ in
            sendWindow += n
            windowWaiter?.resume()
            windowWaiter = nil
        }
    }

    // MARK: task side

    func head() async throws -> ResponseHead {
        try await withCheckedThrowingContinuation { c in
            lock.withLock { _ in
                if let h = head { c.resume(returning: h) }
                else if let e = error { c.resume(throwing: e) }
                else { headWaiter = c }
            }
        }
    }

    /// The whole body and the end totals of a buffered response.
    func collect(head: ResponseHead) async throws -> ReckerResponse {
        let e: ResponseEnd = try await withCheckedThrowingContinuation { c in
            lock.withLock { _ in
                if let e = end { c.resume(returning: e) }
                else if let err = error { c.resume(throwing: err) }
                else { endWaiter = c }
            }
        }
        return lock.withLock { _ in ReckerResponse(head: head, body: buffered, end: e) }
    }

    /// The next body chunk of a streaming response, nil at its end.
    func nextChunk() async throws -> [UInt8]? {
        try await withCheckedThrowingContinuation { c in
            lock.withLock { _ in
                if !chunks.isEmpty { c.resume(returning: chunks.removeFirst()) }
                else if let err = error { c.resume(throwing: err) }
                else if end != nil { c.resume(returning: nil) }
                else { chunkWaiter = c }
            }
        }
    }

    func statsBody() async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { c in
            lock.withLock { _ in
                if let s = stats { c.resume(returning: s) }
                else if let e = error { c.resume(throwing: e) }
                else { statsWaiter = c }
            }
        }
    }

    /// Waits until the daemon grants send window, then takes up to `max` bytes of it.
    func takeSendWindow(max: Int) async throws -> Int {
        while true {
            let got: Int? = try lock.withLock { _ throws -> Int? in
                if let e = error { throw e }
                guard sendWindow > 0 else { return nil }
                let n = min(sendWindow, max)
                sendWindow -= n
                return n
            }
            if let n = got { return n }
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                lock.withLock { _ in
                    if let e = error { c.resume(throwing: e) }
                    else if sendWindow > 0 { c.resume() }
                    else { windowWaiter = c }
                }
            }
        }
    }
}

/// A response whose body is read as it arrives. The daemon sends only as much as this
/// reader has taken plus one window, so a slow reader slows only its own request.
public struct ReckerResponseStream: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    public let head: ResponseHead
    let pending: PendingStream
    let client: ReckerClient

    init(head: ResponseHead, pending: PendingStream, client: ReckerClient) {
        self.head = head
        self.pending = pending
        self.client = client
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let pending: PendingStream
        let grant: @Sendable (Int) -> Void
        public mutating func next() async throws -> [UInt8]? {
            guard let chunk = try await pending.nextChunk() else { return nil }
            grant(chunk.count)
            return chunk
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        let client = self.client
        let pending = self.pending
        return AsyncIterator(pending: pending, grant: { [client, pending] n in client.grant(n, stream: pending.id) })
    }
}
