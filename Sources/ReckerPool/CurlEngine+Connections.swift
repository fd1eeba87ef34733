import CReckerCurl
import Glibc
import ReckerProtocol

/// An upstream connection as reckerd knows it: libcurl opens and closes its sockets through
/// our callbacks, which is how connections get ids (libcurl 7.88 has no CURLINFO_CONN_ID).
struct ConnectionRecord {
    let id: UInt64
    let domain: String
    /// The socket's local port, read on first need; it identifies the connection a
    /// transfer is using (CURLINFO_LOCAL_PORT).
    var localPort: Int?
    var requestsServed = 0
}

extension CurlEngine {
    func installSocketCallbacks(_ t: Transfer) {
        let e = t.easy
        recker_easy_setopt_opensocket(e.raw) { clientp, purpose, address in
            guard purpose == CURLSOCKTYPE_IPCXN, let address else { return CURL_SOCKET_BAD }
            let t = Unmanaged<Transfer>.fromOpaque(clientp!).takeUnretainedValue()
            let fd = recker_open_socket(address)
            if fd >= 0 { t.engine.socketOpened(fd, domain: t.request.target.domain) }
            return fd
        }
        e.set(CURLOPT_OPENSOCKETDATA, pointer: Unmanaged.passUnretained(t).toOpaque())
        recker_easy_setopt_closesocket(e.raw) { clientp, fd in
            let engine = Unmanaged<CurlEngine>.fromOpaque(clientp!).takeUnretainedValue()
            engine.socketClosed(fd)
            return close(fd)
        }
        e.set(CURLOPT_CLOSESOCKETDATA, pointer: Unmanaged.passUnretained(self).toOpaque())
    }

    func socketOpened(_ fd: Int32, domain: String) {
        connections[fd] = ConnectionRecord(id: nextConnectionID, domain: domain)
        nextConnectionID += 1
        noteConnection(opened: true, domain: domain)
    }

    func socketClosed(_ fd: Int32) {
        guard let record = connections.removeValue(forKey: fd) else { return }
        noteConnection(opened: false, domain: record.domain)
    }

    /// The id of the connection a transfer is on, found by its local port; 0 if unknown.
    func connectionID(for t: Transfer) -> UInt64 {
        let port = t.easy.long(CURLINFO_LOCAL_PORT)
        guard port > 0 else { return 0 }
        for (fd, var record) in connections where record.domain == t.request.target.domain {
            if record.localPort == nil {
                record.localPort = Self.localPort(of: fd)
                connections[fd] = record
            }
            if record.localPort == port {
                connections[fd]?.requestsServed += 1
                return record.id
            }
        }
        return 0
    }

    private static func localPort(of fd: Int32) -> Int? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
        default:
            return nil
        }
    }
}
