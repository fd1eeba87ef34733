#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the daemon's socket lives when none is named: the same places, in the same order,
/// for the daemon (first usable directory) and for clients (first socket that answers).
public enum SocketPaths {
    /// The system-wide place, used when it is writable (root, or the service's runtime dir).
    public static let system = "/run/reckerd/reckerd.sock"

    /// The candidates in order: the system path, then `$XDG_RUNTIME_DIR/reckerd.sock`, then
    /// `/tmp/reckerd-UID/reckerd.sock`.
    public static func candidates() -> [String] {
        var list = [system]
        if let xdg = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), !xdg.isEmpty {
            list.append(xdg + "/reckerd.sock")
        }
        list.append("/tmp/reckerd-\(getuid())/reckerd.sock")
        return list
    }

    /// The socket a client should use: `RECKER_SOCKET` if set, else the first candidate a
    /// connection to succeeds on (tried only when several exist), else the first that exists
    /// as a socket (so the error says why it refused, e.g. permission denied), else the
    /// first candidate (so the error names the usual place).
    public static func clientPath() -> String {
        if let env = getenv("RECKER_SOCKET").map({ String(cString: $0) }), !env.isEmpty { return env }
        let list = candidates()
        let existing = list.filter { path in
            var st = stat()
            return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK
        }
        if existing.count > 1 {
            for path in existing where untrustedDirectory(of: path) == nil {
                if let probe = try? UnixSocket(connectingTo: path) {
                    probe.close()
                    return path
                }
            }
        }
        return existing.first ?? list[0]
    }

    /// Why the directory of `socketPath` cannot be trusted to hold this user's daemon, or
    /// nil when it can: a real directory (not a symlink), owned by root or by this user,
    /// that no one else may write to. Anyone who can write there could put their own
    /// socket in the daemon's place and read every request, credentials included.
    public static func untrustedDirectory(of socketPath: String) -> String? {
        let dir = directory(of: socketPath)
        var st = stat()
        guard lstat(dir, &st) == 0 else { return nil }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return "\(dir) is not a directory" }
        let me = getuid()
        guard st.st_uid == 0 || st.st_uid == me else {
            return "\(dir) belongs to uid \(st.st_uid), neither root nor this user (uid \(me))"
        }
        guard st.st_mode & 0o022 == 0 else {
            return "\(dir) can be written by other users (mode \(String(st.st_mode & 0o7777, radix: 8)))"
        }
        return nil
    }

    package static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
