/// The outcome of `ReckerClient.batch`: one result per request, in input order, and totals.
public struct BatchResult: Sendable {
    /// Each request's response or its own error, at the request's index.
    public var results: [Result<ReckerResponse, ReckerError>]
    /// Totals over the batch.
    public var stats: Stats

    /// How many requests the batch had, how many succeeded and failed, and how long it took.
    public struct Stats: Sendable, Equatable {
        /// Requests in the batch.
        public var total: Int
        /// Requests that got a response (of any status).
        public var successful: Int
        /// Requests that failed with an error.
        public var failed: Int
        /// Wall time of the whole batch, milliseconds.
        public var duration: Double

        /// Totals as given.
        public init(total: Int, successful: Int, failed: Int, duration: Double) {
            self.total = total
            self.successful = successful
            self.failed = failed
            self.duration = duration
        }
    }
}

extension ReckerClient {
    /// Sends all `requests` with at most `concurrency` in flight, over this one connection.
    /// A failing request fails only its own item. Relative URLs ("/users/1") are resolved
    /// against the client's `baseURL`. `timeout` bounds each request's call, as in `send`.
    public func batch(_ requests: [ReckerRequest], concurrency: Int = 10, timeout: Duration? = nil) async -> BatchResult {
        let start = ContinuousClock.now
        var results = [Result<ReckerResponse, ReckerError>?](repeating: nil, count: requests.count)
        let limit = max(1, concurrency)
        await withTaskGroup(of: (Int, Result<ReckerResponse, ReckerError>).self) { group in
            var next = 0
            func launch() {
                let i = next
                let request = requests[i]
                next += 1
                group.addTask {
                    do throws(ReckerError) {
                        return (i, .success(try await self.send(request, timeout: timeout)))
                    } catch {
                        return (i, .failure(error))
                    }
                }
            }
            while next < requests.count && next < limit { launch() }
            for await (i, r) in group {
                results[i] = r
                if next < requests.count { launch() }
            }
        }
        let all = results.map { $0! }
        let ok = all.filter { if case .success = $0 { true } else { false } }.count
        let ms = Double((ContinuousClock.now - start).nanoseconds) / 1e6
        return BatchResult(results: all, stats: .init(total: all.count, successful: ok, failed: all.count - ok, duration: ms))
    }
}

extension Duration {
    /// The whole nanoseconds of a non-negative duration (0 for a negative one).
    package var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        return UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }
}
