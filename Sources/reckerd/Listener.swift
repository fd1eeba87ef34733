import Foundation
import Glibc
import NIOCore
import NIOPosix
import ReckerProtocol

/// Chooses, claims and serves the Unix socket.
enum Listener {
    /// The daemon's socket when neither `--socket` nor the config names one: the first of
    /// `SocketPaths.candidates()` whose directory is (or can be made) writable. A directory
    /// it makes is 0700; one that exists must pass `SocketPaths.untrustedDirectory`, or the
    /// daemon refuses to start rather than serve where another user could listen instead.
    static func defaultPath() throws -> String {
        for path in SocketPaths.candidates() {
            let dir = (path as NSString).deletingLastPathComponent
            var st = stat()
            if lstat(dir, &st) == 0 {
                // Root's directory that this user cannot write (/run/reckerd for a user's
                // daemon) is simply not this daemon's; anything else must be trusted.
                if (st.st_mode & S_IFMT) == S_IFDIR && st.st_uid == 0 && access(dir, W_OK) != 0 { continue }
                try trust(path)
                if access(dir, W_OK) == 0 { return path }
                continue
            }
            let parent = (dir as NSString).deletingLastPathComponent
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
            let dir = (path as NSString).deletingLastPathComponent
            guard access(dir.isEmpty ? "." : dir, W_OK) == 0 else {
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

    /// Binds and listens; the socket file gets mode 0660.
    static func bind(_ path: String, daemon: Daemon, group: MultiThreadedEventLoopGroup) throws -> any Channel {
        let channel = try bootstrap(daemon: daemon, group: group)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: false)
            .wait()
        chmod(path, 0o660)
        return channel
    }

    /// Serves a socket that is already bound and listening (socket activation).
    static func bind(descriptor: Int32, daemon: Daemon, group: MultiThreadedEventLoopGroup) throws -> any Channel {
        try bootstrap(daemon: daemon, group: group).withBoundSocket(descriptor).wait()
    }

    private static func bootstrap(daemon: Daemon, group: MultiThreadedEventLoopGroup) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            // NIO's bind path adds no accept backoff: out of descriptors, the listening socket
            // stays readable and the loop would spin. Accepting pauses instead, briefly, and
            // the daemon says why (once per interval).
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler(backoffProvider: { error in
                        daemon.acceptFailed(error)
                        return .milliseconds(100)
                    }))
                }
            }
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let maxFrame = daemon.config.maxFrame
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxLength: maxFrame)))
                    try channel.pipeline.syncOperations.addHandler(ClientSession(daemon: daemon))
                }
            }
    }
}
