/// Who is on the other end of a client connection, as the kernel says (SO_PEERCRED), with
/// the peer process's supplementary groups. Read from the socket by the daemon
/// (`PeerCredentials.of`); here, what the sessions decide with.
package struct PeerCredentials: Sendable, Equatable {
    package var pid: Int32
    package var uid: UInt32
    package var gids: [UInt32]

    package init(pid: Int32, uid: UInt32, gids: [UInt32]) {
        self.pid = pid
        self.uid = uid
        self.gids = gids
    }
}
