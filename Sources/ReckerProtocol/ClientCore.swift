import Synchronization

/// The machinery under `ReckerClient`: one connection to the daemon, the streams in flight
/// on it, a reader thread and an I/O thread. It never refers to the `ReckerClient`, so the
/// threads cannot keep the client alive: when its owner drops it, the client shuts the
/// connection, the reader fails what is left, and the threads end.
final class ClientCore: Sendable {
    let socketPath: String
    private let state = Mutex(State())
    private let io = IOThread()

    struct State: ~Copyable {
        var link: Link?
        var connecting = false
        /// The client is gone: a connection that completes now is closed at once.
        var shutDown = false
        var waiting: [PendingStream] = []
        var streams: [UInt32: PendingStream] = [:]
        var nextStream: UInt32 = 1
    }

    init(socketPath: String) {
        self.socketPath = socketPath
    }

    // MARK: streams

    /// Registers `pending` on the connection (connecting first if needed) and returns the
    /// connection; the stream's id is then `pending.id`.
    func register(_ pending: PendingStream) async throws(ReckerError) -> Link {
        let connect = state.withLock { s -> Bool in
            if let link = s.link {
                Self.assign(pending, &s, link)
                return false
            }
            s.waiting.append(pending)
            defer { s.connecting = true }
            return !s.connecting
        }
        if connect { io.submit { self.connect() } }
        _ = try await pending.waitRegistered()
        guard let link = state.withLock({ s in s.link }) else {
            throw ReckerError(.connectionLost, "the connection to reckerd closed")
        }
        return link
    }

    private static func assign(_ pending: PendingStream, _ s: inout State, _ link: Link) {
        let limit = Int(link.connection.welcome.maxInFlight)
        guard s.streams.count < limit else {
            pending.fail(ReckerError(.tooManyInFlight, "more than \(limit) requests in flight on one connection to reckerd"))
            return
        }
        var id = s.nextStream
        while s.streams[id] != nil || id == 0 { id &+= 1 }
        guard pending.registered(id: id, window: Int(link.connection.welcome.initialWindow)) else { return }
        s.nextStream = id &+ 1
        s.streams[id] = pending
    }

    /// Queues a stream's frames unless the stream has failed (its error is thrown then).
    func send(_ messages: [Message], of pending: PendingStream, on link: Link) throws(ReckerError) {
        var bytes: [UInt8] = []
        do {
            for m in messages { bytes += try m.encoded }
        } catch {
            forget(pending)
            pending.fail(error)
            throw error
        }
        try pending.whileLive { write(bytes, on: link) }
    }

    /// Grants the daemon `n` more bytes of a streaming response its reader has taken.
    func grant(_ n: Int, to pending: PendingStream) {
        guard let increment = UInt32(exactly: n), increment > 0, pending.isLive,
              let link = state.withLock({ s in s.link }),
              let bytes = try? Message.windowUpdate(stream: pending.id, increment: increment).encoded else { return }
        write(bytes, on: link)
    }

    /// Ends a stream with `error` unless it has ended already: a request the daemon knows
    /// of gets CANCEL (which frees its upstream connection) and keeps its id until the
    /// daemon's answer; a stats request just keeps its id until its document arrives.
    func cancel(_ pending: PendingStream, _ error: ReckerError) {
        guard let sent = pending.fail(error) else { return }
        let link = state.withLock { s -> Link? in
            guard pending.id != 0, s.streams[pending.id] === pending else { return nil }
            guard sent else {
                s.streams.removeValue(forKey: pending.id)
                return nil
            }
            return s.link
        }
        guard let link, pending.kind != .stats,
              let bytes = try? Message.cancel(stream: pending.id).encoded else { return }
        write(bytes, on: link)
    }

    /// Drops a stream that ended on this side without its first frame reaching the daemon.
    func forget(_ pending: PendingStream) {
        state.withLock { s in
            if pending.id != 0, s.streams[pending.id] === pending { s.streams.removeValue(forKey: pending.id) }
        }
    }

    // MARK: the connection

    /// Shuts the connection down: requests in flight fail with `CONNECTION_LOST`. With
    /// `final`, a connection still being made is closed as soon as it is.
    func shutdown(final: Bool) {
        state.withLock { s in
            if final { s.shutDown = true }
            // Under the lock: the reader clears `link` before the descriptor can be closed.
            s.link?.connection.socket.shutdown()
        }
    }

    /// On the I/O thread: connects, then registers every stream that waited for it.
    private func connect() {
        let connection: ReckerConnection
        do {
            connection = try ReckerConnection(socketPath: socketPath)
        } catch {
            let waiting = state.withLock { s in
                s.connecting = false
                defer { s.waiting.removeAll() }
                return s.waiting
            }
            for p in waiting { p.fail(error) }
            return
        }
        let link = Link(connection)
        let started = state.withLock { s -> Bool in
            s.connecting = false
            guard !s.shutDown else { return false }
            s.link = link
            for p in s.waiting { Self.assign(p, &s, link) }
            s.waiting.removeAll()
            return true
        }
        guard started else {
            connection.close()
            return
        }
        if !DetachedThread.start({ self.readLoop(link) }) {
            connection.socket.shutdown()
            readLoopEnded(link, ReckerError(.localResources, "no thread to read from reckerd"))
        }
    }

    /// Queues bytes for the I/O thread. A failed write shuts the socket, so the reader
    /// fails every stream on the connection.
    private func write(_ bytes: [UInt8], on link: Link) {
        io.submit {
            guard link.open else { return }
            do { try link.connection.socket.write(bytes) } catch { link.connection.socket.shutdown() }
        }
    }

    /// On the reader thread: every message until the connection ends.
    func readLoop(_ link: Link) {
        var failure = ReckerError(.connectionLost, "reckerd closed the connection")
        while true {
            let message: Message
            do { message = try link.connection.receive() } catch { failure = error; break }
            if case .error(0, let e) = message { failure = e; break }
            dispatch(message, link)
        }
        readLoopEnded(link, failure)
    }

    /// Fails the connection's streams and has the I/O thread close the descriptor after
    /// the writes queued before, so no write can reach a descriptor number reused since.
    private func readLoopEnded(_ link: Link, _ failure: ReckerError) {
        let orphans = state.withLock { s -> [PendingStream] in
            guard s.link === link else { return [] }
            s.link = nil
            defer { s.streams.removeAll() }
            return Array(s.streams.values)
        }
        io.submit {
            link.open = false
            link.connection.close()
        }
        for p in orphans { p.fail(failure) }
    }

    private func dispatch(_ message: Message, _ link: Link) {
        let id = message.stream
        guard let pending = state.withLock({ s in s.streams[id] }) else { return }
        switch message {
        case .responseHead(_, let h): pending.deliverHead(h)
        case .responseBody(_, let data):
            if pending.deliverBody(data), let n = UInt32(exactly: data.count), n > 0,
               let bytes = try? Message.windowUpdate(stream: id, increment: n).encoded {
                write(bytes, on: link)
            }
        case .responseEnd(_, let e):
            forget(pending)
            pending.finish(e)
        case .error(_, let e):
            forget(pending)
            pending.fail(e)
        case .windowUpdate(_, let inc): pending.addSendWindow(Int(inc))
        case .statsResponse(_, let part, let more):
            if !more { forget(pending) }
            pending.deliverStats(part, more: more)
        default: break
        }
    }
}

/// One connection to the daemon as the client's two threads share it.
///
/// Thread confinement: the I/O thread alone writes to the connection and reads or sets
/// `open`; the reader thread alone reads from it (`ReckerConnection` keeps the two apart).
final class Link: @unchecked Sendable {
    let connection: ReckerConnection
    var open = true

    init(_ connection: ReckerConnection) { self.connection = connection }
}
