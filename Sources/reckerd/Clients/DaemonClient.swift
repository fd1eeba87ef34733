import ReckerSession
/// A client connection the daemon keeps track of, whatever it speaks (reckerd's protocol,
/// HTTP/1.1, or the metrics endpoint): counted in the stats, flushed at the end of a
/// pass, closed when the daemon stops.
protocol DaemonClient: AnyObject {
    var peer: PeerCredentials? { get }
    /// Whose connection it counts as for `limits.maxClientsPerUser`: the peer's uid, or
    /// `Daemon.tcpPeers` for a TCP client; nil when the kernel would not say.
    var countedAs: UInt32? { get }
    /// Counted among its user's connections (`limits.maxClientsPerUser`).
    var registered: Bool { get set }
    /// Starts serving: watches the socket, arms the first timer, or says the refusal it
    /// was created with and closes.
    func start()
    func closeNow()
}
