/// A response whose body is read as it arrives. The daemon sends only as much as this
/// reader has taken plus one window, so a slow reader slows only its own request.
///
/// Dropping the stream (every copy, and its iterators) before the body's end cancels the
/// request at the daemon, which frees its upstream connection for the next request.
public struct ReckerResponseStream: AsyncSequence, Sendable {
    /// A chunk of the body, as it arrived.
    public typealias Element = [UInt8]
    /// What reading the body can throw.
    public typealias Failure = ReckerError
    /// Status, headers, and which upstream connection carries the request.
    public let head: ResponseHead
    let handle: StreamHandle

    init(head: ResponseHead, handle: StreamHandle) {
        self.head = head
        self.handle = handle
    }

    /// Reads the body chunk by chunk; cancelling the reading task cancels the request.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let handle: StreamHandle

        /// The next chunk of the body, or nil after the last.
        public mutating func next() async throws(ReckerError) -> [UInt8]? {
            try await handle.next()
        }

        /// The next chunk of the body, or nil after the last.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(ReckerError) -> [UInt8]? {
            try await handle.next()
        }
    }

    /// An iterator over the body; make one per stream.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: handle) }

    /// Stops the response: the daemon cancels the request and frees its upstream
    /// connection; reading afterwards throws `CANCELLED`. Nothing happens after the end.
    public func cancel() {
        handle.cancel(ReckerError(.cancelled, "the response stream was cancelled"))
    }
}

/// What every copy of a stream and its iterators share; when the last goes, an unfinished
/// request is cancelled. It holds the client, so the connection lives as long as the stream.
final class StreamHandle: Sendable {
    let client: ReckerClient
    let pending: PendingStream

    init(client: ReckerClient, pending: PendingStream) {
        self.client = client
        self.pending = pending
    }

    deinit { cancel(ReckerError(.cancelled, "the response stream was dropped before its end")) }

    func cancel(_ error: ReckerError) { client.core.cancel(pending, error) }

    func next() async throws(ReckerError) -> [UInt8]? {
        let pending = self.pending
        let core = client.core
        let result: Result<[UInt8]?, ReckerError> = await withTaskCancellationHandler {
            do throws(ReckerError) { return .success(try await pending.nextChunk()) } catch { return .failure(error) }
        } onCancel: {
            core.cancel(pending, ReckerError(.cancelled, "the task reading the response was cancelled"))
        }
        let chunk = try result.get()
        if let chunk { core.grant(chunk.count, to: pending) }
        return chunk
    }
}
