import ReckerPool
import ReckerProtocol
import Synchronization

/// Stats requests share engine snapshots: one that arrives while a snapshot is being taken
/// waits for that one instead of asking for another, and each format is rendered once per
/// snapshot. So a flood of stats requests costs one snapshot at a time, not one each,
/// while a request still sees everything that happened before it arrived (a snapshot
/// already under way when it arrives is taken on the engine thread after it, as the
/// engine runs in order).
final class StatsCache: Sendable {
    private struct State {
        var waiting: [(StatsReport.Format, @Sendable ([UInt8]) -> Void)] = []
        var taking = false
    }

    private let state = Mutex(State())

    /// Hands `done` the document in `format`, from the snapshot under way or a new one.
    /// `render` turns a snapshot into a document; `done` runs on the engine thread.
    func document(_ format: StatsReport.Format, engine: CurlEngine,
                  render: @escaping @Sendable (PoolStats, StatsReport.Format) -> [UInt8],
                  _ done: @escaping @Sendable ([UInt8]) -> Void) {
        let take = state.withLock { s in
            s.waiting.append((format, done))
            defer { s.taking = true }
            return !s.taking
        }
        guard take else { return }
        engine.snapshot { [self] stats in
            let waiting = state.withLock { s in
                defer {
                    s.waiting = []
                    s.taking = false
                }
                return s.waiting
            }
            var docs: [StatsReport.Format: [UInt8]] = [:]
            for (format, done) in waiting {
                if docs[format] == nil { docs[format] = render(stats, format) }
                done(docs[format]!)
            }
        }
    }
}
