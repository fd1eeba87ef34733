import Foundation
import Glibc
import NIOCore

/// Who is on the other end of a client connection, as the kernel says (SO_PEERCRED), with
/// the peer process's supplementary groups.
struct PeerCredentials: Sendable {
    var pid: Int32
    var uid: UInt32
    var gids: [UInt32]

    /// `struct ucred` from <sys/socket.h> (hidden behind _GNU_SOURCE in Glibc's module).
    private struct UCred: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// Reads the credentials of a connected Unix socket channel; nil if the kernel won't say.
    /// Called on the channel's event loop, where NIO answers at once.
    static func of(_ channel: any Channel) -> PeerCredentials? {
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        let future: EventLoopFuture<UCred> = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET),
                                                                            name: SocketOptionName(17 /* SO_PEERCRED */))
        var cred: UCred?
        future.whenSuccess { cred = $0 }
        guard let c = cred else { return nil }
        return PeerCredentials(pid: c.pid, uid: c.uid, gids: [c.gid] + supplementaryGroups(pid: c.pid))
    }

    /// The process's supplementary groups, from /proc/PID/status ("Groups:").
    private static func supplementaryGroups(pid: Int32) -> [UInt32] {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Groups:") }) else { return [] }
        return line.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { UInt32($0) }
    }
}
