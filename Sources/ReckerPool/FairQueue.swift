import ReckerSession

/// A pool's waiting requests, served in turns at two levels: users take turns (the one with
/// the fewest requests running first, round robin among equals), and within a user its
/// client connections take turns the same way; FIFO within a connection. So one user's
/// hundreds of connections do not put another user's request hundreds of turns back, and
/// one connection's hundreds of queued requests do not hold back the same user's other
/// connection.
struct FairQueue {
    struct Waiting: Equatable {
        var id: TransferID
        var client: ClientID
        /// Whose turn it is at the first level (the daemon gives the client's uid).
        var user: ClientID
        /// When it started waiting (MonotonicClock nanoseconds).
        var since: UInt64

        init(id: TransferID, client: ClientID, user: ClientID? = nil, since: UInt64) {
            self.id = id
            self.client = client
            self.user = user ?? client
            self.since = since
        }
    }

    private var byClient: [ClientID: [Waiting]] = [:]
    /// Users with requests waiting, in the order they are served next.
    private var userTurns: [ClientID] = []
    /// Each such user's connections with requests waiting, in the order they are served next.
    private var clientTurns: [ClientID: [ClientID]] = [:]
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// When the longest-waiting request started waiting.
    var oldest: UInt64? { byClient.values.compactMap { $0.first?.since }.min() }

    mutating func append(_ w: Waiting) {
        if byClient[w.client] == nil {
            if clientTurns[w.user] == nil { userTurns.append(w.user) }
            clientTurns[w.user, default: []].append(w.client)
        }
        byClient[w.client, default: []].append(w)
        count += 1
    }

    /// The next request to serve: of the user with the fewest requests `runningByUser`
    /// (earliest in turn among those), of that user's connection with the fewest
    /// `runningByClient` (likewise), the oldest.
    mutating func popNext(runningByUser: [ClientID: Int] = [:], runningByClient: [ClientID: Int] = [:]) -> Waiting? {
        guard !userTurns.isEmpty else { return nil }
        let u = Self.fewest(userTurns, runningByUser)
        let user = userTurns.remove(at: u)
        guard var clients = clientTurns[user], !clients.isEmpty else { return nil }
        let client = clients.remove(at: Self.fewest(clients, runningByClient))
        guard let next = byClient[client]?.removeFirst() else { return nil }
        if byClient[client]!.isEmpty {
            byClient[client] = nil
        } else {
            clients.append(client)
        }
        if clients.isEmpty {
            clientTurns[user] = nil
        } else {
            clientTurns[user] = clients
            userTurns.append(user)
        }
        count -= 1
        return next
    }

    /// The index in `order` of the key with the fewest `running`, the earliest among equals.
    private static func fewest(_ order: [ClientID], _ running: [ClientID: Int]) -> Int {
        var pick = 0
        var fewest = Int.max
        for i in order.indices {
            let n = running[order[i], default: 0]
            if n < fewest {
                pick = i
                fewest = n
                // None can have fewer than none: the common case stops at the first.
                if n == 0 { break }
            }
        }
        return pick
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
                dropClient(client, user: list[0].user)
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
        let user = list[i].user
        list.remove(at: i)
        if list.isEmpty {
            dropClient(client, user: user)
        } else {
            byClient[client] = list
        }
        count -= 1
        return true
    }

    /// `client` has nothing waiting any more: out of its user's turns (and the user out of
    /// theirs when it was the last).
    private mutating func dropClient(_ client: ClientID, user: ClientID) {
        byClient[client] = nil
        clientTurns[user]?.removeAll { $0 == client }
        if clientTurns[user]?.isEmpty ?? true {
            clientTurns[user] = nil
            userTurns.removeAll { $0 == user }
        }
    }
}
