import CReckerCurl
import Glibc
import ReckerProtocol

/// An upstream connection as reckerd knows it: libcurl opens and closes its sockets through
/// our callbacks, which is how connections get ids (libcurl 7.88 has no CURLINFO_CONN_ID).
struct ConnectionRecord {
    let id: ConnectionID
    let domain: String
    /// The socket's local port, read on first need; the pre-request callback names the
    /// connection a request goes out on by it.
    var localPort: Int?
    /// Closed by reckerd (idle or lifetime expiry); libcurl still holds the descriptor,
    /// now a dead socket, until it notices and lets go.
    var retired = false
}

extension CurlEngine {
    func installSocketCallbacks(_ t: Transfer) {
        let e = t.easy
        let me = Unmanaged.passUnretained(t).toOpaque()
        recker_easy_setopt_opensocket(e.raw) { clientp, purpose, address in
            guard purpose == CURLSOCKTYPE_IPCXN, let address else { return CURL_SOCKET_BAD }
            let t = Unmanaged<Transfer>.fromOpaque(clientp!).takeUnretainedValue()
            let fd = recker_open_socket(address)
            if fd >= 0 { t.engine.socketOpened(fd, target: t.request.target) }
            return fd
        }
        e.set(CURLOPT_OPENSOCKETDATA, pointer: me)
        recker_easy_setopt_closesocket(e.raw) { clientp, fd in
            let engine = Unmanaged<CurlEngine>.fromOpaque(clientp!).takeUnretainedValue()
            engine.socketClosed(fd)
            return close(fd)
        }
        e.set(CURLOPT_CLOSESOCKETDATA, pointer: Unmanaged.passUnretained(self).toOpaque())
        recker_easy_setopt_prereq(e.raw) { clientp, _, _, _, localPort in
            let t = Unmanaged<Transfer>.fromOpaque(clientp!).takeUnretainedValue()
            t.engine.transfer(t, startsOnLocalPort: Int(localPort))
            return CURL_PREREQFUNC_OK
        }
        e.set(CURLOPT_PREREQDATA, pointer: me)
    }

    func socketOpened(_ fd: Int32, target: RequestValidator.Target) {
        let id = nextConnectionID
        nextConnectionID += 1
        connections[fd] = ConnectionRecord(id: id, domain: target.domain)
        openConnections += 1
        pool.connectionOpened(id, target: target, now: MonotonicClock.nanoseconds())
        count(target.domain) { $0.connectionsCreated += 1 }
    }

    func socketClosed(_ fd: Int32) {
        guard let record = connections.removeValue(forKey: fd) else { return }
        if !record.retired {
            openConnections -= 1
            pool.connectionClosed(record.id)
        }
    }

    /// libcurl is about to send a request on the connection with this local port: new,
    /// reused, or one more HTTP/2 stream. A second call for one request is libcurl retrying
    /// on a fresh connection after a reused one turned out dead.
    func transfer(_ t: Transfer, startsOnLocalPort port: Int) {
        if let previous = t.connection {
            deferred += pool.connectionReleased(previous, now: MonotonicClock.nanoseconds())
            count(t.request.target.domain) { $0.retries += 1 }
        }
        t.connection = nil
        for (fd, var record) in connections where record.domain == t.request.target.domain && !record.retired {
            if record.localPort == nil {
                record.localPort = Self.localPort(of: fd)
                connections[fd] = record
            }
            if record.localPort == port {
                t.connection = record.id
                pool.connectionInUse(record.id)
                return
            }
        }
    }

    /// Closes an idle connection now, so the upstream sees the close on time. libcurl keeps
    /// its descriptor, which now points at a dead socket: on its next look libcurl finds the
    /// connection closed and lets go of it.
    func closeConnection(_ id: ConnectionID) {
        guard let (fd, record) = connections.first(where: { $0.value.id == id }), !record.retired else {
            pool.connectionClosed(id)
            return
        }
        connections[fd]?.retired = true
        openConnections -= 1
        dup2(deadSocket, fd)
        pool.connectionClosed(id)
    }

    /// The response's HTTP version tells the pool whether this domain multiplexes.
    func learned(version: UInt8, domain: String) {
        count(domain) { $0.httpVersion = ResponseHead.versionName(version) }
        deferred += pool.learnedProtocol(domain: domain, multiplexed: version >= 20)
    }

    /// Opens a warm connection by sending HEAD to the warm target's URL.
    func warmUp(_ target: WarmTarget) {
        guard !stopping else { return }
        let head = RequestHead(method: "HEAD", url: target.url)
        guard let parsed = try? RequestValidator.validate(head) else { return }
        count(parsed.domain) { $0.requestsTotal += 1 }
        let id = nextTransfer.wrappingAdd(1, ordering: .relaxed).oldValue
        begin(id, EngineRequest(head: head, target: parsed, arrival: MonotonicClock.nanoseconds(), hasBody: false),
              NoSink(), warmUp: true)
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

/// The sink of the engine's own warm-up requests: nobody waits for them.
final class NoSink: TransferSink {
    func transferHead(_ id: TransferID, _ head: ResponseHead) {}
    func transferBody(_ id: TransferID, _ chunk: [UInt8]) {}
    func transferEnd(_ id: TransferID, _ end: ResponseEnd) {}
    func transferFailed(_ id: TransferID, _ error: ReckerError) {}
    func transferBodySent(_ id: TransferID, bytes: Int) {}
}
