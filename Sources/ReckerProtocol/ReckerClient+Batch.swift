/// The outcome of `ReckerClient.batch`: one result per request, in input order, and totals.
public struct BatchResult: Sendable {
    /// Each request's response or its own error, at the request's index.
    public var results: [Result<ReckerResponse, ReckerError>]
    public var stats: Stats

    public struct Stats: Sendable, Equatable {
        public var total: Int
        public var successful: Int
        public var failed: Int
        /// Wall time of the whole batch, milliseconds.
        public var duration: Double

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
    /// against the client's `baseURL`.
    public func batch(_ requests: [ReckerRequest], concurrency: Int = 10) async -> BatchResult {
        let start = MonotonicClock.nanoseconds()
        var results = [Result<ReckerResponse, ReckerError>?](repeating: nil, count: requests.count)
        let limit = max(1, concurrency)
        await withTaskGroup(of: (Int, Result<ReckerResponse, ReckerError>).self) { group in
            var next = 0
            func launch() {
                let i = next
                let request = requests[i]
                next += 1
                group.addTask {
                    do { return (i, .success(try await self.send(request))) } catch let e as ReckerError {
                        return (i, .failure(e))
                    } catch {
                        return (i, .failure(ReckerError(.internalError, "\(error)")))
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
        let ms = Double(MonotonicClock.nanoseconds() - start) / 1e6
        return BatchResult(results: all, stats: .init(total: all.count, successful: ok, failed: all.count - ok, duration: ms))
    }
}
