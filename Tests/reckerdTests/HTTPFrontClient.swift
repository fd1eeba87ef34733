import Foundation

/// A raw HTTP client for the HTTP front's tests: bytes out exactly as written (malformed
/// ones included), bytes in with a bounded wait, and whether the daemon closed.
final class HTTPFrontClient {
    let fd: Int32

    /// Connects to a Unix socket.
    init(unix path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else {
            close(fd)
            throw NSError(domain: "HTTPFrontClient", code: Int(errno), userInfo: [NSLocalizedDescriptionKey: "connect \(path): errno \(errno)"])
        }
    }

    /// Connects to 127.0.0.1:port.
    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard r == 0 else {
            close(fd)
            throw NSError(domain: "HTTPFrontClient", code: Int(errno), userInfo: [NSLocalizedDescriptionKey: "connect port \(port): errno \(errno)"])
        }
    }

    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    /// Reads until the peer closes, `until` holds for what was read, or `seconds` pass.
    /// Returns what was read and whether the peer closed.
    func read(seconds: Double = 5, until: (Data) -> Bool = { _ in false }) -> (data: Data, closed: Bool) {
        var data = Data()
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = max(1, Int32(deadline.timeIntervalSinceNow * 1000))
            guard poll(&p, 1, min(left, 100)) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return (data, true) }
            data.append(contentsOf: buffer[0 ..< n])
            if until(data) { return (data, false) }
        }
        return (data, false)
    }

    /// The responses' status codes in what was read: every "HTTP/1.1 NNN " (the tests'
    /// bodies hold no such text, and a body need not end in a line break).
    static func statuses(_ data: Data) -> [Int] {
        let text = String(decoding: data, as: UTF8.self)
        return text.components(separatedBy: "HTTP/1.1 ").dropFirst().compactMap { rest in
            let code = rest.prefix(4)
            guard code.count == 4, code.last == " " else { return nil }
            return Int(code.prefix(3))
        }
    }
}
