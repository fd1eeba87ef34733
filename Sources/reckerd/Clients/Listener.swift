import CReckerLoop
import Glibc
import ReckerLoop
import ReckerProtocol

/// Chooses, claims and serves a listening socket (the daemon's Unix socket, the HTTP
/// front's Unix socket and loopback port, the metrics port): accepts clients on the loop
/// and hands them to the daemon with the protocol they speak.
final class Listener {
    /// What the clients of a listener speak.
    enum Kind: Equatable {
        /// reckerd's own protocol (docs/PROTOCOL.md), on the Unix socket.
        case binary
        /// HTTP/1.1 proxy requests on the HTTP front's Unix socket (peer credentials apply).
        case httpUnix
        /// HTTP/1.1 proxy requests on the HTTP front's loopback TCP port.
        case httpTCP
        /// `GET /metrics` on the metrics port.
        case metrics

        var isUnix: Bool { self == .binary || self == .httpUnix }
    }

    private let fd: Int32
    let kind: Kind
    private var registration: EventLoop.Registration?
    private unowned let daemon: Daemon
    /// The socket file to remove on stop; nil for one systemd passed (systemd owns it).
    let path: String?
    /// Clients accepted per readiness, so a connection storm cannot hold the loop.
    private static let acceptBurst = 64

    private init(fd: Int32, path: String?, daemon: Daemon, kind: Kind) {
        self.fd = fd
        self.kind = kind
        self.path = path
        self.daemon = daemon
    }

    // MARK: - choosing the path

    /// The daemon's socket when neither `--socket` nor the config names one: the first of
    /// `SocketPaths.candidates()` whose directory is (or can be made) writable. A directory
    /// it makes is 0700; one that exists must pass `SocketPaths.untrustedDirectory`, or the
    /// daemon refuses to start rather than serve where another user could listen instead.
    static func defaultPath() throws -> String {
        for path in SocketPaths.candidates() {
            let dir = SocketPaths.directory(of: path)
            var st = stat()
            if lstat(dir, &st) == 0 {
                // Root's directory that this user cannot write (/run/reckerd for a user's
                // daemon) is simply not this daemon's; anything else must be trusted.
                if (st.st_mode & S_IFMT) == S_IFDIR && st.st_uid == 0 && access(dir, W_OK) != 0 { continue }
                try trust(path)
                if access(dir, W_OK) == 0 { return path }
                continue
            }
            let parent = SocketPaths.directory(of: dir)
            if access(parent, W_OK) == 0 && mkdir(dir, dir.hasPrefix("/tmp/") ? 0o700 : 0o755) == 0 {
                try trust(path)
                return path
            }
        }
        throw ConfigError(description: "no writable directory for the socket among \(SocketPaths.candidates().joined(separator: ", ")); pass --socket PATH")
    }

    /// Refuses a socket directory another user could write to.
    static func trust(_ path: String) throws {
        if let why = SocketPaths.untrustedDirectory(of: path) {
            throw ConfigError(description: "refusing to serve \(path): \(why); another user could take the socket's place (remove the directory, or pass --socket PATH)")
        }
    }

    /// Makes `path` free to bind: refuses when a live daemon answers there, removes a stale
    /// socket file left by a dead one, refuses to touch anything that is not a socket.
    static func claim(_ path: String) throws {
        try trust(path)
        var st = stat()
        guard lstat(path, &st) == 0 else {
            let dir = SocketPaths.directory(of: path)
            guard access(dir, W_OK) == 0 else {
                throw ConfigError(description: "cannot create the socket \(path): directory \(dir) is not writable")
            }
            return
        }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw ConfigError(description: "\(path) exists and is not a socket; refusing to replace it")
        }
        if let probe = try? UnixSocket(connectingTo: path) {
            probe.close()
            throw ConfigError(description: "another reckerd is already serving \(path)")
        }
        guard unlink(path) == 0 else {
            throw ConfigError(description: "cannot remove the stale socket \(path): \(String(cString: strerror(errno)))")
        }
    }

    // MARK: - listening

    /// Binds and listens on `path`; the socket file gets mode 0660.
    static func bind(_ path: String, daemon: Daemon, kind: Kind = .binary) throws -> Listener {
        let fd = try SystemError.check("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do {
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
                throw ConfigError(description: "socket path \(path) is longer than \(MemoryLayout.size(ofValue: address.sun_path) - 1) bytes")
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            try SystemError.check("bind(\(path))") {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
            }
            chmod(path, 0o660)
            try SystemError.check("listen") { listen(fd, 256) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return try serve(fd, path: path, daemon: daemon, kind: kind)
    }

    /// Binds and listens on a loopback TCP address (the HTTP front's `listen`, `metrics.listen`).
    static func bind(_ address: LoopbackAddress, daemon: Daemon, kind: Kind) throws -> Listener {
        let family = address.ipv6 ? AF_INET6 : AF_INET
        let fd = try SystemError.check("socket") { socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do {
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if address.ipv6 {
                var a = sockaddr_in6()
                a.sin6_family = sa_family_t(AF_INET6)
                a.sin6_port = address.port.bigEndian
                _ = inet_pton(AF_INET6, address.host, &a.sin6_addr)
                try SystemError.check("bind(\(address))") {
                    withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
                }
            } else {
                var a = sockaddr_in()
                a.sin_family = sa_family_t(AF_INET)
                a.sin_port = address.port.bigEndian
                _ = inet_pton(AF_INET, address.host, &a.sin_addr)
                try SystemError.check("bind(\(address))") {
                    withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                }
            }
            try SystemError.check("listen") { listen(fd, 256) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return try serve(fd, path: nil, daemon: daemon, kind: kind)
    }

    /// Serves a socket that is already bound and listening (socket activation).
    static func adopt(descriptor fd: Int32, daemon: Daemon, kind: Kind = .binary) throws -> Listener {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return try serve(fd, path: nil, daemon: daemon, kind: kind)
    }

    private static func serve(_ fd: Int32, path: String?, daemon: Daemon, kind: Kind) throws -> Listener {
        let listener = Listener(fd: fd, path: path, daemon: daemon, kind: kind)
        listener.registration = try daemon.loop.register(fd, .readable) { [unowned listener] _ in listener.accept() }
        return listener
    }

    private func accept() {
        for _ in 0 ..< Self.acceptBurst {
            let client = recker_accept(fd)
            if client >= 0 {
                daemon.adopt(client, kind)
                continue
            }
            let e = errno
            switch e {
            case EAGAIN, EWOULDBLOCK:
                return
            case EINTR, ECONNABORTED, EPROTO:
                continue
            default:
                // Out of descriptors or memory: the listening socket stays readable, so
                // accepting pauses briefly instead of spinning, and the daemon says why.
                daemon.acceptFailed(SystemError("accept", e))
                guard let registration else { return }
                daemon.loop.modify(registration, [])
                daemon.loop.schedule(at: daemon.loop.now &+ 100_000_000) { [weak self] in
                    guard let self, let registration = self.registration else { return }
                    daemon.loop.modify(registration, .readable)
                }
                return
            }
        }
    }

    /// Stops accepting and closes the socket; removes the file if this daemon made it.
    func close() {
        if let registration { daemon.loop.unregister(registration) }
        registration = nil
        Glibc.close(fd)
        if let path { unlink(path) }
    }
}
