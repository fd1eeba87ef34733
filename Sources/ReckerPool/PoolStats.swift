/// Counters for one domain (or for the whole daemon). Live values, never estimates.
package struct DomainStats: Sendable, Equatable {
    package var requestsTotal = 0
    package var requestsInFlight = 0
    package var connectionsCreated = 0
    package var connectionsOpen = 0
    package var errorsTotal = 0
    package var bytesIn = 0
    package var bytesOut = 0

    package init() {}
}

/// A snapshot of the engine's counters.
package struct PoolStats: Sendable, Equatable {
    package var total = DomainStats()
    package var domains: [String: DomainStats] = [:]

    package init() {}

    /// Applies a change to one domain and to the total alike.
    mutating func update(_ domain: String, _ change: (inout DomainStats) -> Void) {
        change(&total)
        change(&domains[domain, default: DomainStats()])
    }
}
