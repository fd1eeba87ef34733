import CReckerCurl
import Glibc
import ReckerProtocol
import ReckerSession

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

/// One socket libcurl opened for an upstream connection, as reckerd knows it. A record lives
/// exactly as long as libcurl holds the socket: it is made in the open-socket callback and
/// ends in the close-socket callback (`finish` and a periodic audit cover a socket closed
/// any other way). A connection is libcurl's (`CURLINFO_CONN_ID`, libcurl 8.2+); it may
/// have had several sockets while connecting (happy eyeballs tries IPv6 and IPv4), and is
/// open while any of them is.
struct ConnectionRecord {
    let id: ConnectionID
    let fd: Int32
    /// What `fd` named when libcurl opened it; after a retire, the dead socket it was
    /// replaced with.
    var identity: SocketIdentity
    /// `host:port` of the URL libcurl opened the socket for: for a redirect, the hop's
    /// domain, not that of the request that started the chain.
    let domain: String
    /// Requests started on it so far, and whether it has answered in HTTP/1 (where bytes
    /// arriving while it is idle would be read as the next request's answer; HTTP/2 is framed).
    var requests = 0
    var http1 = false
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
            return t.engine.requestStarts(t)
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

    /// The connection libcurl has `t` on now (opening it, or about to send on it).
    static func connectionID(of t: Transfer) -> ConnectionID? {
        let id = t.easy.offset(CURLINFO_CONN_ID)
        return id >= 0 ? ConnectionID(id) + 1 : nil
    }

    /// libcurl opened a socket for `t`. Its domain is that of the URL being fetched now
    /// (`CURLINFO_EFFECTIVE_URL`), which differs from the request's own after a redirect.
    /// The pool hears of the connection at its first socket.
    func socketOpened(_ fd: Int32, for t: Transfer) {
        dropWatch(fd)
        let target = t.easy.string(CURLINFO_EFFECTIVE_URL).flatMap { try? RequestValidator.parse(url: $0) } ?? t.request.target
        if let stale = connections[fd] {
            forget(stale, because: "descriptor \(fd) was opened again without libcurl closing it through reckerd")
        }
        guard let identity = SocketIdentity.of(fd), let id = Self.connectionID(of: t) else { return }
        connections[fd] = ConnectionRecord(id: id, fd: fd, identity: identity, domain: target.domain)
        t.openedSockets.append((fd, id))
        socketsOf[id, default: []].append(fd)
        if socketsOf[id]!.count == 1 {
            openConnections += 1
            pool.connectionOpened(id, target: target, now: loop.now)
        }
    }

    func socketClosed(_ fd: Int32) {
        dropWatch(fd)
        guard let record = connections.removeValue(forKey: fd) else { return }
        release(record)
    }

    /// A socket of `record`'s connection is gone; with its last one, the connection.
    private func release(_ record: ConnectionRecord) {
        socketsOf[record.id]?.removeAll { $0 == record.fd }
        if connectionFDs[record.id] == record.fd { connectionFDs[record.id] = nil }
        guard socketsOf[record.id]?.isEmpty ?? true else { return }
        socketsOf[record.id] = nil
        if retired.remove(record.id) == nil {
            openConnections -= 1
            deferred += pool.connectionClosed(record.id)
        }
    }

    /// After `curl_multi_remove_handle`: the sockets `t` opened that libcurl closed without
    /// the callback are no longer recorded. libcurl 7.88 closed a connection still being
    /// set up so (seen with `strace -k`); not seen on 8.14, and one fstat per socket the
    /// transfer opened keeps the records true if it happens.
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
        release(record)
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
    /// connection is libcurl's own (`CURLINFO_CONN_ID`); its socket is the one left open
    /// once connecting is done. A connection is counted created at its first request, so
    /// attempts that never connected are connect failures, not connections.
    ///
    /// A resend is allowed only by the replay policy (`RequestValidator.mayResend`);
    /// otherwise the transfer is aborted here and fails saying the request may have
    /// reached the upstream. A reused HTTP/1 connection that holds unread bytes or the
    /// upstream's close is never picked: libcurl 8 checks that itself before reuse
    /// ("connection has input pending, not reusable"; ReplayTests shows it from outside).
    func requestStarts(_ t: Transfer) -> Int32 {
        if let previous = t.connection {
            deferred += pool.connectionReleased(previous, now: loop.now)
        }
        t.connection = nil
        if t.sent && !t.sawResponse {
            t.resentAfterHTTP2 = t.resentAfterHTTP2 || t.attemptOnReusedHTTP2
            // libcurl 8.14 resends after an attempt on a fresh connection only for
            // REFUSED_STREAM (nghttp2 also reports so a stream a GOAWAY left out): the
            // upstream did not process it (RFC 9113 §8.7), so any method may go again.
            // After a reused connection's end it cannot say whether the upstream did.
            if !t.startedOnReuse { t.attemptsRefused += 1 }
            let refused = !t.startedOnReuse
            count(t.request.target.domain) { $0.retries += 1 }
            // Once more at most (PROTOCOL.md §5.1): libcurl itself would try up to five
            // times after a GOAWAY or REFUSED_STREAM, each reaching the upstream.
            guard refused || RequestValidator.mayResend(t.request.head), t.resends == 0, !t.sentBefore else {
                t.resendRefused = true
                return CURL_PREREQFUNC_ABORT
            }
            t.resends += 1
        }
        t.sent = true
        t.sawResponse = false
        // A redirect hop to a URL with credentials would send them as Authorization.
        if let hop = t.easy.string(CURLINFO_EFFECTIVE_URL), RequestValidator.hasCredentials(hop) {
            t.redirectRefused = "a redirect led to a URL with credentials in it; reckerd does not follow it"
            return CURL_PREREQFUNC_ABORT
        }
        guard let id = Self.connectionID(of: t), !retired.contains(id), let fd = carryingSocket(of: id),
              let record = connections[fd] else {
            warn("request \(t.id) starts on a connection reckerd has no record of")
            return CURL_PREREQFUNC_OK
        }
        if t.resends > 0 && record.requests > 0 && t.restarts == 0 && (!t.request.hasBody || t.replayable) {
            // libcurl's resend picked another reused connection, which may be as stale as the
            // first (PROTOCOL.md 5.1 says a fresh one): the engine starts it over on one.
            t.restartFresh = true
            return CURL_PREREQFUNC_ABORT
        }
        connectionFDs[id] = fd
        if record.requests == 0 { count(record.domain) { $0.connectionsCreated += 1 } }
        t.startedOnReuse = record.requests > 0
        // A reused connection that never answered in HTTP/1 answered in HTTP/2.
        t.attemptOnReusedHTTP2 = record.requests > 0 && !record.http1
        connections[fd]?.requests += 1
        t.connection = id
        deferred += pool.connectionInUse(id)
        return CURL_PREREQFUNC_OK
    }

    /// The socket connection `id` carries requests on: its only one, or the connected one
    /// while happy eyeballs' losers are still open.
    private func carryingSocket(of id: ConnectionID) -> Int32? {
        guard let fds = socketsOf[id], !fds.isEmpty else { return nil }
        guard fds.count > 1 else { return fds[0] }
        var peer = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        return fds.first { fd in
            withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) == 0 }
            }
        } ?? fds.last
    }

    /// Closes an idle connection now, so the upstream sees the close on time. libcurl keeps
    /// its descriptor, which now points at a dead socket: on its next look libcurl finds the
    /// connection closed and lets go of it. Nothing is touched unless the descriptor is
    /// proven to still name the connection's socket.
    func closeConnection(_ id: ConnectionID) {
        guard !retired.contains(id), let fd = connectionFDs[id] ?? socketsOf[id]?.last, let record = connections[fd] else {
            deferred += pool.connectionClosed(id)
            return
        }
        guard SocketIdentity.of(fd) == record.identity, let dead = SocketIdentity.of(deadSocket) else {
            forget(record, because: "descriptor \(fd) no longer names its socket; left untouched")
            return
        }
        dup2(deadSocket, fd)
        socketReplaced(fd)
        retired.insert(id)
        connections[fd]?.identity = dead
        openConnections -= 1
        deferred += pool.connectionClosed(id)
        schedulePrune()
    }

    /// libcurl lets go of a closed idle connection's descriptor only when it next looks over
    /// its pool, which a transfer's start does at most once a second (8.14: url.c's
    /// create_conn calls Curl_cpool_prune_dead). So a second after connections are closed,
    /// and while any wait, the engine starts a transfer that makes it look and then fails
    /// without leaving the machine: to a Unix socket path that cannot exist (ENOTDIR).
    func schedulePrune() {
        guard pruneTimer == nil, !pruning else { return }
        pruneTimer = loop.schedule(at: loop.now &+ 1_100_000_000) { [weak self] in
            guard let self else { return }
            pruneTimer = nil
            guard !retired.isEmpty, !stopping else { return }
            if pruneHandle == nil, let h = EasyHandle() {
                _ = h.set(CURLOPT_URL, "http://localhost/")
                _ = h.set(CURLOPT_UNIX_SOCKET_PATH, "/dev/null/reckerd-prune")
                _ = h.set(CURLOPT_PROXY, "")
                _ = h.set(CURLOPT_NOSIGNAL, 1)
                pruneHandle = h
            }
            guard let h = pruneHandle else { return }
            pruning = curl_multi_add_handle(multi.raw, h.raw) == CURLM_OK
            retiredBeforePrune = retired.count
        }
    }

    /// The prune transfer ended; if it let go of some retired connections but not all
    /// (libcurl's once-a-second limit), another follows.
    func pruned() {
        guard let h = pruneHandle, pruning else { return }
        curl_multi_remove_handle(multi.raw, h.raw)
        pruning = false
        if !retired.isEmpty && retired.count < retiredBeforePrune { schedulePrune() }
    }

    /// An idle HTTP/1 connection's socket became readable while libcurl did not watch it:
    /// the upstream wrote bytes no request asked for, or closed. It is closed now, at the
    /// first byte, as nginx's keepalive module does, so no later request can take those
    /// bytes for its answer (libcurl 8 also declines such a connection when it picks one,
    /// but bytes arriving after that check and before the request went out would still be
    /// read as its answer).
    func idleSocketStirred(_ fd: Int32) {
        guard let record = connections[fd], record.http1, !retired.contains(record.id),
              !isCarrying(record.id) else { return }
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        guard n >= 0 else { return }
        if n > 0 { warn("connection \(record.id) to \(record.domain) sent bytes after its last response while idle; closed") }
        closeConnection(record.id)
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
        begin(id, EngineRequest(head: head, target: parsed, arrival: loop.now, hasBody: false),
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
