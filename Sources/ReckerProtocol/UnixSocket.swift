#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking Unix-domain stream socket: the transport under every client.
///
/// Every call retries EINTR and turns errno into a `ReckerError` whose detail is the errno.
public final class UnixSocket {
    /// The connected socket's descriptor, for `poll`, socket options or a loop of the
    /// caller's own; it stays this object's to close.
    public let fd: Int32
    private var closed = false

    /// Connects to the daemon's socket; `DAEMON_UNAVAILABLE` when nothing listens there, or
    /// when this user may not connect (detail EACCES: the message says permission denied).
    public init(connectingTo path: String) throws(ReckerError) {
        #if canImport(Glibc)
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let s = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard s >= 0 else { throw ReckerError(.daemonUnavailable, "socket(): \(UnixSocket.describe(errno))", detail: UInt32(errno)) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard pathBytes.count < capacity else {
            UnixSocket.closeFD(s)
            throw ReckerError(.daemonUnavailable, "socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        var rc: Int32
        repeat {
            rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        } while rc < 0 && errno == EINTR
        guard rc == 0 else {
            let e = errno
            UnixSocket.closeFD(s)
            if e == EACCES || e == EPERM {
                throw ReckerError(.daemonUnavailable, "permission denied on \(path): this user may not connect to reckerd's socket",
                                  detail: UInt32(EACCES))
            }
            throw ReckerError(.daemonUnavailable, "no reckerd listening on \(path): \(UnixSocket.describe(e))", detail: UInt32(e))
        }
        fd = s
    }

    deinit { close() }

    /// Writes all bytes.
    public func write(_ bytes: [UInt8]) throws(ReckerError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                #if canImport(Glibc)
                Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                #else
                Darwin.send(fd, raw.baseAddress! + offset, raw.count - offset, 0)
                #endif
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw ReckerError(.connectionLost, "write to reckerd: \(UnixSocket.describe(errno))", detail: UInt32(errno))
            }
            offset += n
        }
    }

    /// Reads what is available, up to `max` bytes; an empty result means the daemon closed.
    public func read(max: Int = 65536, into buffer: inout [UInt8]) throws(ReckerError) -> Int {
        let before = buffer.count
        buffer.reserveCapacity(before + max)
        var n = 0
        repeat {
            n = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max) { tmp in
                let r = recv(fd, tmp.baseAddress!, max, 0)
                if r > 0 { buffer.append(contentsOf: tmp[0 ..< r]) }
                return r
            }
        } while n < 0 && errno == EINTR
        if n < 0 { throw ReckerError(.connectionLost, "read from reckerd: \(UnixSocket.describe(errno))", detail: UInt32(errno)) }
        return buffer.count - before
    }

    /// Makes `read` fail with EAGAIN after `milliseconds` without data; 0 waits forever.
    public func setReceiveTimeout(milliseconds: Int) {
        var tv = timeval(tv_sec: milliseconds / 1000, tv_usec: .init((milliseconds % 1000) * 1000))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Stops both directions, waking a reader blocked in `read`.
    public func shutdown() {
        #if canImport(Glibc)
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
        #else
        _ = Darwin.shutdown(fd, SHUT_RDWR)
        #endif
    }

    /// Closes the socket (once; later calls do nothing). Also done when the object goes.
    public func close() {
        guard !closed else { return }
        closed = true
        UnixSocket.closeFD(fd)
    }

    private static func closeFD(_ fd: Int32) {
        #if canImport(Glibc)
        _ = Glibc.close(fd)
        #else
        _ = Darwin.close(fd)
        #endif
    }

    static func describe(_ e: Int32) -> String {
        guard let s = strerror(e) else { return "errno \(e)" }
        return String(cString: s)
    }
}
