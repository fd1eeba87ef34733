import ReckerPool

/// The key requests take turns by in a pool's queue: the client's uid, so that fairness is
/// per user, not per connection (200 connections of one user with a request each made
/// another user's request wait 9.5 s behind them; by uid it waits for one turn). A client
/// whose uid is unknown takes turns as its own connection.
enum TurnKey {
    static func of(uid: UInt32?, connection: ClientID) -> ClientID {
        uid.map { ClientID($0) } ?? (1 << 63 | connection)
    }
}
