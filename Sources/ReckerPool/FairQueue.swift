/// Identifies the client a request came from (one client connection), so waiting requests
/// can be served fairly between clients. 0 for requests of no particular client.
package typealias ClientID = UInt64

/// A pool's waiting requests: FIFO within each client, and clients take turns, the one
/// with the fewest requests running first (round robin among equals), so one client with
/// hundreds of requests queued does not make another's single request wait behind them.
struct FairQueue {
    struct Waiting: Equatable {
        var id: TransferID
        var client: ClientID
        /// When it started waiting (MonotonicClock nanoseconds).
        var since: UInt64
    }

    private var byClient: [ClientID: [Waiting]] = [:]
    /// Clients with requests waiting, in the order they are served next.
    private var turns: [ClientID] = []
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// When the longest-waiting request started waiting.
    var oldest: UInt64? { byClient.values.compactMap { $0.first?.since }.min() }

    mutating func append(_ w: Waiting) {
        if byClient[w.client] == nil { turns.append(w.client) }
        byClient[w.client, default: []].append(w)
        count += 1
    }

    /// The next request to serve: the oldest of the client with the fewest requests
    /// `running`, the earliest in turn among those.
    mutating func popNext(fewestRunning running: [ClientID: Int] = [:]) -> Waiting? {
        guard !turns.isEmpty else { return nil }
        var pick = 0
        var fewest = Int.max
        for i in turns.indices {
            let n = running[turns[i], default: 0]
            if n < fewest {
                pick = i
                fewest = n
                // None can have fewer than none: the common case (clients with one request
                // each) stops at the first.
                if n == 0 { break }
            }
        }
        let client = turns.remove(at: pick)
        guard let next = byClient[client]?.removeFirst() else { return nil }
        if byClient[client]!.isEmpty {
            byClient[client] = nil
        } else {
            turns.append(client)
        }
        count -= 1
        return next
    }

    /// Takes out the waiting requests `matching` says to; returns them.
    mutating func remove(where matching: (Waiting) -> Bool) -> [Waiting] {
        var removed: [Waiting] = []
        for (client, list) in byClient {
            let gone = list.filter(matching)
            guard !gone.isEmpty else { continue }
            removed += gone
            let kept = list.filter { !matching($0) }
            if kept.isEmpty {
                byClient[client] = nil
                turns.removeAll { $0 == client }
            } else {
                byClient[client] = kept
            }
        }
        count -= removed.count
        return removed
    }

    /// Takes out one waiting request of `client`; false if it was not waiting.
    mutating func remove(_ id: TransferID, client: ClientID) -> Bool {
        guard var list = byClient[client], let i = list.firstIndex(where: { $0.id == id }) else { return false }
        list.remove(at: i)
        if list.isEmpty {
            byClient[client] = nil
            turns.removeAll { $0 == client }
        } else {
            byClient[client] = list
        }
        count -= 1
        return true
    }
}
