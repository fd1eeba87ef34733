import CReckerCurl
import Glibc
import ReckerProtocol

/// Which open file a descriptor number names. The kernel hands a closed number to the next
/// `socket()` or `accept()` at once, so a number alone proves nothing; device and inode do.
struct SocketIdentity: Equatable {
    let device: UInt64
    let inode: UInt64

    /// The identity of what `fd` names now, or nil when it names nothing.
    static func of(_ fd: Int32) -> SocketIdentity? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        return SocketIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }
}

/// An upstream connection as reckerd knows it. A record lives exactly as long as libcurl
/// holds the socket: it is made in the open-socket callback and ends in the close-socket
/// callback. libcurl 7.88 skips that callback in one place, seen with `strace -k`: a
/// transfer removed while its connection is still being set up has its sockets closed by
/// `close()` inside `curl_multi_remove_handle`; `finish` covers that path, and a periodic
/// audit covers any other.
struct ConnectionRecord {
    let id: ConnectionID
    let fd: Int32
    /// What `fd` named when libcurl opened it; after a retire, the dead socket it was
    /// replaced with.
    var identity: SocketIdentity
    /// `host:port` of the URL libcurl opened the socket for: for a redirect, the hop's
    /// domain, not that of the request that started the chain.
    let domain: String
    /// Its endpoints ("LOCAL_IP port PEER_IP port"), read once it is connected: what the
    /// pre-request callback names a connection by.
    var endpoints: String?
    /// Requests started on it so far, and whether it has answered in HTTP/1 (where bytes
    /// arriving while it is idle would be read as the next request's answer; HTTP/2 is
    /// framed, and its streams start before any answer says which it is).
    var requests = 0
    var http1 = false
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
            // A redirect hop to a URL with credentials gets no connection at all.
            if let hop = t.easy.string(CURLINFO_EFFECTIVE_URL), RequestValidator.hasCredentials(hop) {
                t.redirectRefused = "a redirect led to a URL with credentials in it; reckerd does not follow it"
                return CURL_SOCKET_BAD
            }
            if let denied = t.engine.deniedDestination(address) {
                t.deniedDestination = denied
                return CURL_SOCKET_BAD
            }
            let fd = recker_open_socket(address)
            if fd >= 0 { t.engine.socketOpened(fd, for: t) } else { t.socketError = errno }
            return fd
        }
        e.set(CURLOPT_OPENSOCKETDATA, pointer: me)
        recker_easy_setopt_closesocket(e.raw) { clientp, fd in
            let engine = Unmanaged<CurlEngine>.fromOpaque(clientp!).takeUnretainedValue()
            engine.socketClosed(fd)
            return close(fd)
        }
        e.set(CURLOPT_CLOSESOCKETDATA, pointer: Unmanaged.passUnretained(self).toOpaque())
        recker_easy_setopt_prereq(e.raw) { clientp, peerIP, localIP, peerPort, localPort in
            let t = Unmanaged<Transfer>.fromOpaque(clientp!).takeUnretainedValue()
            return t.engine.requestStarts(t, endpoints: CurlEngine.endpoints(local: localIP, localPort, peer: peerIP, peerPort))
        }
        e.set(CURLOPT_PREREQDATA, pointer: me)
    }

    /// Why the policy refuses the address libcurl is about to connect to, or nil.
    func deniedDestination(_ address: UnsafeMutablePointer<curl_sockaddr>) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { text in
            let kind = recker_destination_class(address, text.baseAddress, text.count)
            let where_ = String(cString: text.baseAddress!)
            if kind & RECKER_DEST_LINK_LOCAL != 0 && options.denyLinkLocal {
                return "\(where_) is link-local, where cloud metadata services live (policy.denyLinkLocal)"
            }
            if kind & RECKER_DEST_PRIVATE != 0 && options.denyPrivate { return "\(where_) is in a private range (policy.denyPrivate)" }
            if kind & RECKER_DEST_LOOPBACK != 0 && options.denyLoopback { return "\(where_) is loopback (policy.denyLoopback)" }
            return nil
        }
    }

    /// libcurl opened a socket for `t`. Its domain is that of the URL being fetched now
    /// (`CURLINFO_EFFECTIVE_URL`), which differs from the request's own after a redirect.
    func socketOpened(_ fd: Int32, for t: Transfer) {
        dropWatch(fd)
        let target = t.easy.string(CURLINFO_EFFECTIVE_URL).flatMap { try? RequestValidator.parse(url: $0) } ?? t.request.target
        if let stale = connections[fd] {
            forget(stale, because: "descriptor \(fd) was opened again without libcurl closing it through reckerd")
        }
        guard let identity = SocketIdentity.of(fd) else { return }
        let id = nextConnectionID
        nextConnectionID += 1
        connections[fd] = ConnectionRecord(id: id, fd: fd, identity: identity, domain: target.domain)
        t.openedSockets.append((fd, id))
        connectionFDs[id] = fd
        openConnections += 1
        pool.connectionOpened(id, target: target, now: MonotonicClock.nanoseconds())
        count(target.domain) { $0.connectionsCreated += 1 }
    }

    func socketClosed(_ fd: Int32) {
        dropWatch(fd)
        guard let record = connections.removeValue(forKey: fd) else { return }
        connectionFDs[record.id] = nil
        if let e = record.endpoints { connectionsByEndpoints[e] = nil }
        if !record.retired {
            openConnections -= 1
            deferred += pool.connectionClosed(record.id)
        }
    }

    /// After `curl_multi_remove_handle`: the sockets `t` opened that libcurl closed without
    /// the callback (a connection still being set up) are no longer recorded.
    func forgetSocketsClosedSilently(by t: Transfer) {
        for (fd, id) in t.openedSockets {
            guard let record = connections[fd], record.id == id, SocketIdentity.of(fd) != record.identity else { continue }
            forget(record, because: nil)
        }
    }

    /// Drops a record whose socket is gone without the close callback; an unexpected
    /// `reason` is logged.
    private func forget(_ record: ConnectionRecord, because reason: String?) {
        connections[record.fd] = nil
        connectionFDs[record.id] = nil
        if let e = record.endpoints { connectionsByEndpoints[e] = nil }
        if !record.retired {
            openConnections -= 1
            deferred += pool.connectionClosed(record.id)
        }
        if let reason { warn("connection \(record.id) to \(record.domain) forgotten: \(reason)") }
    }

    /// Checks that every record's descriptor still names the socket it was made for, and
    /// forgets those that do not (run by the janitor and before each stats snapshot).
    func auditConnections() {
        for record in Array(connections.values) where SocketIdentity.of(record.fd) != record.identity {
            forget(record, because: "descriptor \(record.fd) no longer names its socket")
        }
    }

    /// libcurl is about to send a request of `t`: on a new or reused connection, as one
    /// more HTTP/2 stream, after a redirect, or again after a reused connection died. The
    /// connection is the socket whose endpoints libcurl names, which no other TCP
    /// connection on the host shares. (`CURLINFO_ACTIVESOCKET` names nothing here: libcurl
    /// 7.88 sets it only once a transfer has ended.)
    ///
    /// A resend is allowed only by the replay policy (`RequestValidator.mayResend`);
    /// otherwise the transfer is aborted here and fails saying the request may have
    /// reached the upstream.
    func requestStarts(_ t: Transfer, endpoints: String?) -> Int32 {
        if let previous = t.connection {
            deferred += pool.connectionReleased(previous, now: MonotonicClock.nanoseconds())
        }
        t.connection = nil
        if t.sent && !t.sawResponse {
            count(t.request.target.domain) { $0.retries += 1 }
            guard RequestValidator.mayResend(t.request.head) else {
                t.resendRefused = true
                return CURL_PREREQFUNC_ABORT
            }
        }
        t.sent = true
        t.sawResponse = false
        // A redirect hop to a URL with credentials would send them as Authorization.
        if let hop = t.easy.string(CURLINFO_EFFECTIVE_URL), RequestValidator.hasCredentials(hop) {
            t.redirectRefused = "a redirect led to a URL with credentials in it; reckerd does not follow it"
            return CURL_PREREQFUNC_ABORT
        }
        guard let endpoints, let record = connection(at: endpoints), !record.retired else {
            warn("request \(t.id) starts on a connection reckerd has no record of (\(endpoints ?? "endpoints unknown"))")
            return CURL_PREREQFUNC_OK
        }
        // An idle HTTP/1 connection that holds unread bytes would hand them to this request
        // as its answer (an upstream that sent more than it said, late): stop before sending.
        // One the upstream closed while it was idle is dead: stop before sending into it
        // (libcurl 7.88 misses some over TLS and fails the send instead of resending).
        if record.requests > 0 && record.http1, let state = Self.idleState(record.fd) {
            // Over TLS the bytes may be the upstream's close_notify: only plain HTTP says so.
            let tls = t.easy.string(CURLINFO_EFFECTIVE_URL)?.lowercased().hasPrefix("https:") ?? true
            t.staleWarning = state == .bytes && !tls ? "connection \(record.id) to \(record.domain) held bytes after its last response" : nil
            t.staleConnection = record.id
            return CURL_PREREQFUNC_ABORT
        }
        t.startedOnReuse = record.requests > 0
        connections[record.fd]?.requests += 1
        t.connection = record.id
        deferred += pool.connectionInUse(record.id)
        return CURL_PREREQFUNC_OK
    }

    enum IdleState { case bytes, closed }

    /// What an idle connection's socket holds that it should not: bytes, or the upstream's
    /// close; nil when it is quiet, as an idle connection should be (peeked, not taken).
    static func idleState(_ fd: Int32) -> IdleState? {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n > 0 ? .bytes : n == 0 ? .closed : nil
    }

    /// The record of the connection with these endpoints; records connected since the last
    /// look-up are indexed first.
    private func connection(at endpoints: String) -> ConnectionRecord? {
        if let fd = connectionsByEndpoints[endpoints] { return connections[fd] }
        for (fd, record) in connections where record.endpoints == nil && !record.retired {
            guard let e = Self.endpoints(of: fd) else { continue }
            connections[fd]?.endpoints = e
            connectionsByEndpoints[e] = fd
        }
        return connectionsByEndpoints[endpoints].flatMap { connections[$0] }
    }

    static func endpoints(of fd: Int32) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 128) { buf in
            recker_socket_endpoints(fd, buf.baseAddress, buf.count) == 0 ? String(cString: buf.baseAddress!) : nil
        }
    }

    static func endpoints(local: UnsafeMutablePointer<CChar>?, _ localPort: Int32,
                          peer: UnsafeMutablePointer<CChar>?, _ peerPort: Int32) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 128) { buf in
            recker_endpoints(local, localPort, peer, peerPort, buf.baseAddress, buf.count) == 0
                ? String(cString: buf.baseAddress!) : nil
        }
    }

    /// Closes an idle connection now, so the upstream sees the close on time. libcurl keeps
    /// its descriptor, which now points at a dead socket: on its next look libcurl finds the
    /// connection closed and lets go of it. Nothing is touched unless the descriptor is
    /// proven to still name the connection's socket.
    func closeConnection(_ id: ConnectionID) {
        guard let fd = connectionFDs[id], let record = connections[fd], !record.retired else {
            deferred += pool.connectionClosed(id)
            return
        }
        guard SocketIdentity.of(fd) == record.identity, let dead = SocketIdentity.of(deadSocket) else {
            forget(record, because: "descriptor \(fd) no longer names its socket; left untouched")
            return
        }
        dup2(deadSocket, fd)
        socketReplaced(fd)
        if let e = record.endpoints { connectionsByEndpoints[e] = nil }
        connections[fd]?.retired = true
        connections[fd]?.identity = dead
        openConnections -= 1
        deferred += pool.connectionClosed(id)
    }

    /// The response's HTTP version tells the pool whether this domain multiplexes.
    func learned(version: UInt8, domain: String, connection: ConnectionID?) {
        count(domain) { $0.httpVersion = ResponseHead.versionName(version) }
        if version < 20, let c = connection, let fd = connectionFDs[c] { connections[fd]?.http1 = true }
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
}

/// The sink of the engine's own warm-up requests: nobody waits for them.
final class NoSink: TransferSink {
    func transferHead(_ id: TransferID, _ head: ResponseHead) {}
    func transferBody(_ id: TransferID, _ chunk: [UInt8]) {}
    func transferEnd(_ id: TransferID, _ end: ResponseEnd) {}
    func transferFailed(_ id: TransferID, _ error: ReckerError) {}
    func transferBodySent(_ id: TransferID, bytes: Int) {}
}
