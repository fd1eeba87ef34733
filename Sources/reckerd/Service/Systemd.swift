import CReckerSystemd
import Dispatch
import Glibc
import ReckerProtocol
import Synchronization

/// The daemon's systemd glue: readiness, status, watchdog and socket activation. Every call
/// is harmless without systemd (no NOTIFY_SOCKET, no LISTEN_FDS), so the daemon runs the
/// same either way.
enum Systemd {
    /// True when started by systemd with a notify socket.
    static let notifying = getenv("NOTIFY_SOCKET") != nil

    /// Sends a notification from a queue of its own: sd_notify blocks while the manager's
    /// socket is full, and neither the engine nor a stop may wait on that. While one send
    /// is stuck, later WATCHDOG/STATUS beats are dropped rather than piled up.
    static func notify(_ state: String, droppable: Bool = false) {
        let busy = sending.withLock { s -> Bool in
            if s && droppable { return true }
            s = true
            return false
        }
        if busy { return }
        queue.async {
            _ = sd_notify(0, state)
            sending.withLock { $0 = false }
        }
    }

    /// Waits until the notifications already sent have left, at most `seconds`: the process
    /// must not exit with `STOPPING=1` still on the queue (exit ends the queue's thread, and
    /// the manager would never hear it; ServiceTests.testSocketActivationNotifyAndWatchdog
    /// missed it under load). Bounded, because a send blocks while the manager's socket is full.
    static func flush(within seconds: Int) {
        let done = DispatchSemaphore(value: 0)
        queue.async { done.signal() }
        _ = done.wait(timeout: .now() + .seconds(seconds))
    }

    private static let queue = DispatchQueue(label: "reckerd.sd-notify")
    private static let sending = Mutex(false)

    /// The listening sockets systemd passed (socket activation), by their names
    /// (`FileDescriptorName=`): the one named `http` is the HTTP front's
    /// (deploy/systemd/reckerd-http.socket), the first other one the daemon's own. Read once:
    /// the LISTEN_* variables are cleared.
    static func inheritedSockets() -> (main: Int32?, http: Int32?) {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let n = sd_listen_fds_with_names(1, &names)
        guard n >= 1 else { return (nil, nil) }
        var main: Int32?
        var http: Int32?
        for i in 0 ..< Int(n) {
            let fd = SD_LISTEN_FDS_START + Int32(i)
            let name = names?[i].map { String(cString: $0) } ?? ""
            if name == "http" && http == nil {
                http = fd
            } else if main == nil {
                main = fd
            }
            free(names?[i])
        }
        free(names)
        return (main, http)
    }

    /// Seconds between WATCHDOG=1 pings (half the configured interval), or nil.
    static var watchdogInterval: Double? {
        let usec = recker_watchdog_usec()
        return usec > 0 ? Double(usec) / 2e6 : nil
    }

    /// True when stderr is connected to the journal (systemd sets JOURNAL_STREAM).
    static let journalStderr = getenv("JOURNAL_STREAM") != nil
}

/// Sends WATCHDOG=1 and a current STATUS= from the engine loop, at most once per interval:
/// when the engine hangs, the pings stop and systemd restarts the service.
final class Heartbeat: Sendable {
    private let watchdog: Double?
    private let last = Mutex<(watchdog: Double, status: Double)>((0, 0))
    private let statusLine: @Sendable (Int, Int) -> String
    /// Beats start once READY=1 is sent: systemd hears nothing before the socket listens.
    let ready = Atomic<Bool>(false)

    init(statusLine: @escaping @Sendable (_ inFlight: Int, _ openConnections: Int) -> String) {
        watchdog = Systemd.watchdogInterval
        self.statusLine = statusLine
    }

    /// Called on each engine loop pass with the engine's vitals and the loop's time (the
    /// monotonic clock: a wall-clock step backwards must not stop the pings).
    func beat(inFlight: Int, openConnections: Int, now nowNs: UInt64) {
        guard Systemd.notifying, ready.load(ordering: .relaxed) else { return }
        let now = Double(nowNs) / 1e9
        var message = ""
        last.withLock { l in
            if let w = watchdog, now - l.watchdog >= w {
                l.watchdog = now
                message += "WATCHDOG=1\n"
            }
            if now - l.status >= 2 {
                l.status = now
                message += "STATUS=" + statusLine(inFlight, openConnections) + "\n"
            }
        }
        if !message.isEmpty { Systemd.notify(message, droppable: true) }
    }
}
