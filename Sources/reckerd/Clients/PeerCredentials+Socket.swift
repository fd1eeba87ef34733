import CReckerLoop
import ReckerSession

extension PeerCredentials {
    /// Reads the credentials of a connected Unix socket; nil if the kernel won't say.
    /// Supplementary groups are read only when `groups` is set (an `allowGroups` list is in
    /// force): from SO_PEERGROUPS, as the kernel saw them at connect, which works where
    /// /proc hides other users' processes (`ProtectProc=invisible`). Up to 256 groups; a
    /// peer in more is refused its groups, which only ever denies.
    static func of(_ fd: Int32, groups: Bool) -> PeerCredentials? {
        var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
        guard recker_peer_credentials(fd, &pid, &uid, &gid) == 0 else { return nil }
        var gids = [gid]
        if groups {
            var list = [UInt32](repeating: 0, count: 256)
            let n = list.withUnsafeMutableBufferPointer { recker_peer_groups(fd, $0.baseAddress, Int32($0.count)) }
            if n > 0 { gids += list[0 ..< Int(n)] }
        }
        return PeerCredentials(pid: pid, uid: uid, gids: gids)
    }
}
