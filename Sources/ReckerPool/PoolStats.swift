import Histogram

/// Counters and gauges for one domain (or for the whole daemon). Live values, never
/// estimates: gauges are read from the pool's own state when the snapshot is taken.
package struct DomainStats: Sendable, Equatable {
    package var requestsTotal = 0
    package var requestsInFlight = 0
    package var requestsQueued = 0
    package var connectionsCreated = 0
    package var connectionsOpen = 0
    package var connectionsIdle = 0
    package var connectionsBusy = 0
    package var connectFailures = 0
    package var timeouts = 0
    package var retries = 0
    package var errorsTotal = 0
    package var bytesIn = 0
    package var bytesOut = 0
    /// "1.1", "2" …: the version of the latest response.
    package var httpVersion: String?
    /// Whole-request latency, µs: p50, p90, p99, and sum and count.
    package var latency = Quantiles()
    /// Time waited for a connection, µs.
    package var queueTime = Quantiles()

    package init() {}

    /// Reuse ratio: 1 − connections created / requests that got a connection (those that
    /// failed to connect are left out, so a domain nothing reached shows 0, not 99 %).
    package var reuseRatio: Double {
        let connected = requestsTotal - connectFailures
        return connected <= 0 ? 0 : max(0, 1 - Double(connectionsCreated) / Double(connected))
    }
}

/// Percentiles of a distribution, in microseconds.
package struct Quantiles: Sendable, Equatable {
    package var p50: UInt64 = 0
    package var p90: UInt64 = 0
    package var p99: UInt64 = 0
    package var sum: UInt64 = 0
    package var count: UInt64 = 0

    package init() {}
}

/// The statistics key of the domains past `PoolOptions.maxTrackedDomains`.
package let otherDomains = "other"

/// A snapshot of the engine's statistics.
package struct PoolStats: Sendable, Equatable {
    package var total = DomainStats()
    package var domains: [String: DomainStats] = [:]

    package init() {}
}

/// A latency distribution kept by the engine (µs, up to 10 minutes, 2 significant digits).
/// A domain's first `exactSamples` values are kept as they are, inline (no allocation of
/// their own); only a domain that goes past them gets a histogram (about 23 KB), so a daemon
/// that has seen thousands of domains once each holds no histogram for them, and their coming
/// and going leaves no small allocations scattered over the heap.
package struct LatencyRecorder {
    package static let exactSamples = 16
    private var samples = InlineArray<16, UInt64>(repeating: 0)
    private var histogram: Histogram<UInt64>?
    private var sum: UInt64 = 0
    private var count: UInt64 = 0

    package init() {}

    package mutating func record(_ micros: UInt64) {
        let value = min(micros, 600_000_000)
        sum &+= micros
        count += 1
        if histogram == nil && count <= UInt64(Self.exactSamples) {
            samples[Int(count) - 1] = value
            return
        }
        if histogram == nil {
            var h = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .two)
            for i in 0 ..< Self.exactSamples { _ = h.record(samples[i]) }
            histogram = h
        }
        _ = histogram!.record(value)
    }

    /// The last percentiles computed, kept while nothing is recorded: each costs a walk
    /// over the histogram's buckets, and a stats snapshot of 1,000 idle domains would
    /// otherwise walk 6,000 of them on the loop (~80 ms in a debug build).
    private var cached: Quantiles?

    package mutating func quantiles() -> Quantiles {
        if let cached, cached.count == count { return cached }
        var q = Quantiles()
        q.count = count
        q.sum = sum
        if let histogram {
            q.p50 = histogram.valueAtPercentile(50)
            q.p90 = histogram.valueAtPercentile(90)
            q.p99 = histogram.valueAtPercentile(99)
        } else if count > 0 {
            // Nearest rank, as the histogram reports it: the smallest value with at least
            // p % of the samples at or below it.
            let sorted = (0 ..< Int(count)).map { samples[$0] }.sorted()
            func at(_ p: Int) -> UInt64 { sorted[max(0, (p * sorted.count + 99) / 100 - 1)] }
            q.p50 = at(50)
            q.p90 = at(90)
            q.p99 = at(99)
        }
        cached = q
        return q
    }
}

/// The engine's running counters for one domain (or the total).
struct DomainCounters {
    var stats = DomainStats()
    /// When the engine last counted anything for this domain (MonotonicClock).
    var lastUsed: UInt64 = 0
    var latency = LatencyRecorder()
    var queueTime = LatencyRecorder()
}
