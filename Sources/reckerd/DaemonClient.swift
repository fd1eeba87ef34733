/// A client connection the daemon keeps track of, whatever it speaks (reckerd's protocol,
/// HTTP/1.1, or the metrics endpoint): counted in the stats, flushed at the end of a
/// pass, closed when the daemon stops.
protocol DaemonClient: AnyObject {
    var peer: PeerCredentials? { get }
    /// Counted among its user's connections (`limits.maxClientsPerUser`).
    var registered: Bool { get set }
    func flush()
    func closeNow()
}

extension ClientConnection: DaemonClient {}
