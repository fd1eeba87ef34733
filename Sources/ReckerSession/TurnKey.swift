
/// The key users take turns by in a pool's queue (then their connections, `FairQueue`): the
/// client's uid, so that 200 connections of one user with a request each do not put another
/// user's request 200 turns back (9.5 s in a review; by uid it waits one turn). A client
/// whose uid is unknown takes turns as a user of its own.
package enum TurnKey {
    package static func of(uid: UInt32?, connection: ClientID) -> ClientID {
        uid.map { ClientID($0) } ?? (1 << 63 | connection)
    }
}
