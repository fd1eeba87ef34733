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
    /// Supplementary groups are read only when `groups` is set (an `allowGroups` list is
    /// in force). Called on the channel's event loop, where NIO answers at once.
    static func of(_ channel: any Channel, groups: Bool) -> PeerCredentials? {
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        let future: EventLoopFuture<UCred> = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET),
                                                                            name: SocketOptionName(17 /* SO_PEERCRED */))
        var cred: UCred?
        future.whenSuccess { cred = $0 }
        guard let c = cred else { return nil }
        return PeerCredentials(pid: c.pid, uid: c.uid, gids: [c.gid] + (groups ? supplementaryGroups(provider) : []))
    }

    /// The peer's supplementary groups as the kernel saw them at connect (SO_PEERGROUPS),
    /// which works where /proc hides other users' processes (`ProtectProc=invisible`).
    /// NIO hands back a zero-filled buffer without its length; the kernel's list is sorted,
    /// so the groups are the entries up to the last non-zero one (a lone group 0 cannot be
    /// told from an empty list and is left out, which only ever denies). Up to 256 groups.
    private static func supplementaryGroups(_ provider: any SocketOptionProvider) -> [UInt32] {
        let future: EventLoopFuture<InlineArray<256, UInt32>> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(59 /* SO_PEERGROUPS */))
        var list: InlineArray<256, UInt32>?
        future.whenSuccess { list = $0 }
        guard let list else { return [] }
        var groups: [UInt32] = []
        for i in 0 ..< 256 { groups.append(list[i]) }
        guard let last = groups.lastIndex(where: { $0 != 0 }) else { return [] }
        return Array(groups[...last])
    }
}
