#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the daemon's socket lives when none is named: the same places, in the same order,
/// for the daemon (first usable directory) and for clients (first socket that exists), so a
/// cron job finds the daemon whatever its working directory.
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

    /// The socket a client should use: `RECKER_SOCKET` if set, else the first candidate that
    /// exists as a socket, else the first candidate (so the error names the usual place).
    public static func clientPath() -> String {
        if let env = getenv("RECKER_SOCKET").map({ String(cString: $0) }), !env.isEmpty { return env }
        let list = candidates()
        for path in list {
            var st = stat()
            if stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK { return path }
        }
        return list[0]
    }
}
