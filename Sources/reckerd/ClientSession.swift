import Logging
import NIOCore
import ReckerPool
import ReckerProtocol
import Synchronization

/// One client connection: the handshake, its requests in flight, and per-stream flow
/// control. Event-loop confined; the engine reaches it through `SessionSink`.
final class ClientSession: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = ByteBuffer

    /// A request of this client in flight.
    struct Stream {
        var transfer: TransferID
        var method: String
        /// Response bytes the client still accepts (its window for us).
        var sendWindow: Int
        /// Request body bytes the client may still send.
        var receiveWindow: Int
        var requestEnded: Bool
        var queued: [[UInt8]] = []
        var queuedOffset = 0
        var end: ResponseEnd?
        var url: String
        /// The pool and stats key, from the check at the door.
        var domain: String
        /// Body bytes sent to the client but not yet reported to the engine, and how many
        /// make a report: a quarter of the response buffer this request was started with.
        var unreported = 0
        var reportEvery: Int
    }

    private let daemon: Daemon
    private var context: ChannelHandlerContext!
    private var sink: SessionSink!
    private var handshaken = false
    private var streams: [UInt32: Stream] = [:]
    private var byTransfer: [TransferID: UInt32] = [:]
    private var closed = false
    /// The peer's credentials (SO_PEERCRED, and its groups), read when it connects.
    private var peer: PeerCredentials?
    private let logger: Logger
    /// Stats requests of this connection not answered yet, and the most there may be: more
    /// are refused, so one client cannot keep the daemon busy rendering stats.
    private var statsStreams: Set<UInt32> = []
    /// Counted among its user's connections (not when refused for having too many).
    private var registered = false
    /// Closes the connection if HELLO does not come in time; cancelled once it has.
    private var handshakeTimer: Scheduled<Void>?
    /// Inside `channelRead`: writes wait for `channelReadComplete` to be flushed together.
    private var reading = false
    private var unflushed = false
    static let maxStatsInProgress = 4
    /// A client must say HELLO this soon after connecting (PROTOCOL.md 1.1).
    static let handshakeTimeoutS = 10
    /// This connection's identity in the pool's queues, where clients take turns.
    private let clientID: ClientID

    init(daemon: Daemon) {
        self.daemon = daemon
        self.logger = daemon.logger
        clientID = daemon.nextClientID()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        sink = SessionSink(session: self, eventLoop: context.eventLoop)
        let me = NIOLoopBound(WeakBox(self), eventLoop: context.eventLoop)
        handshakeTimer = context.eventLoop.scheduleTask(in: .seconds(Int64(Self.handshakeTimeoutS))) {
            guard let session = me.value.value, !session.handshaken else { return }
            session.connectionError(ReckerError(.badHandshake, "no HELLO within \(Self.handshakeTimeoutS) s"))
        }
    }

    /// The context holds this handler and the handler its context: the cycle is broken
    /// here, or every client connection would stay in memory for good.
    func handlerRemoved(context: ChannelHandlerContext) {
        closed = true
        handshakeTimer?.cancel()
        handshakeTimer = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        peer = PeerCredentials.of(context.channel, groups: !daemon.config.allowGroups.isEmpty)
        registered = daemon.clientConnected(context.channel, uid: peer?.uid)
        context.fireChannelActive()
        if !registered {
            connectionError(ReckerError(.tooManyClients, "uid \(peer?.uid ?? 0) has \(daemon.config.maxClientsPerUser) connections to reckerd already (limits.maxClientsPerUser)"))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        sink.markGone()
        for s in streams.values { daemon.engine.cancel(s.transfer) }
        streams.removeAll()
        byTransfer.removeAll()
        if registered { daemon.clientDisconnected(context.channel, uid: peer?.uid) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let e = error as? ReckerError {
            connectionError(e)
        } else {
            logger.debug("client connection error: \(error)")
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !closed else { return }
        reading = true
        defer { reading = false }
        do throws(ReckerError) {
            // Connection frames belong to stream 0 (PROTOCOL.md 1.1).
            if frame.stream != 0 && [FrameType.hello, FrameType.ping, FrameType.pong].contains(frame.type) {
                throw ReckerError(.invalidStream, "frame type 0x\(String(frame.type, radix: 16)) belongs to stream 0")
            }
            // Frames only the daemon sends, well-formed or not (PROTOCOL.md 1.1).
            if [FrameType.welcome, FrameType.responseHead, FrameType.responseBody, FrameType.responseEnd, FrameType.error,
                FrameType.statsResponse].contains(frame.type) {
                throw ReckerError(.malformedFrame, "a daemon-to-client frame was sent by the client")
            }
            let message: Message
            do { message = try Message(frame: frame) } catch {
                // A HELLO that does not parse, first or not, fails the handshake.
                if frame.type == FrameType.hello { throw ReckerError(.badHandshake, "HELLO: \(error.message)") }
                throw error
            }
            guard handshaken else { return try handshake(message) }
            try handle(message)
        } catch {
            if error.code.isConnectionError { connectionError(error) } else { streamError(frame.stream, error) }
        }
    }

    /// What the frames of one read produced (refusals, PONGs, WELCOME) goes out in one flush.
    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed && !closed { context.flush() }
        unflushed = false
        context.fireChannelReadComplete()
    }

    /// Backpressure on the client: while its answers pile up unread (past the write
    /// buffer's high mark), nothing more is read from it, so a client that sends without
    /// reading (PINGs, stats requests) cannot grow the daemon's memory.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        context.channel.setOption(ChannelOptions.autoRead, value: writable).whenFailure { _ in }
        if writable {
            context.read()
            for id in Array(streams.keys) { pump(id) }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: - client frames

    private func handshake(_ message: Message) throws(ReckerError) {
        guard case .hello(let hello) = message else {
            throw ReckerError(.badHandshake, "the first frame must be HELLO")
        }
        guard hello.minVersion <= Message.version && Message.version <= hello.maxVersion else {
            throw ReckerError(.unsupportedVersion, "reckerd speaks protocol version \(Message.version) only; client offered \(hello.minVersion)...\(hello.maxVersion)")
        }
        guard let peer else {
            throw ReckerError(.accessDenied, "reckerd could not read this client's credentials")
        }
        guard daemon.allows(uid: peer.uid, gids: peer.gids) else {
            logger.notice("refused client", metadata: ["uid": "\(peer.uid)", "pid": "\(peer.pid)"])
            throw ReckerError(.accessDenied, "uid \(peer.uid) is not in allowUsers and none of its groups is in allowGroups")
        }
        handshaken = true
        handshakeTimer?.cancel()
        handshakeTimer = nil
        let c = daemon.config
        let features = hello.features & Message.Feature.limits
        write(.welcome(Message.Welcome(version: Message.version, features: features, maxFrame: UInt32(c.maxFrame),
                                       maxInFlight: UInt32(c.maxInFlightPerClient), initialWindow: UInt32(c.streamWindow),
                                       headerLimits: features != 0 ? c.pool.headerLimits : nil)))
    }

    private func handle(_ message: Message) throws(ReckerError) {
        switch message {
        case .requestHead(let id, let head, let end):
            try startRequest(id, head, end: end)
        case .requestBody(let id, let data, let end):
            guard var s = streams[id], !s.requestEnded else { return }
            s.receiveWindow -= data.count
            guard s.receiveWindow >= 0 else {
                throw ReckerError(.flowControlError, "stream \(id) sent \(-s.receiveWindow) body bytes beyond its window")
            }
            s.requestEnded = end
            streams[id] = s
            daemon.engine.sendBody(s.transfer, data, end: end)
        case .windowUpdate(let id, let increment):
            guard var s = streams[id] else { return }
            s.sendWindow += Int(increment)
            guard s.sendWindow <= Int(Int32.max) else {
                throw ReckerError(.flowControlError, "stream \(id) window above 2^31-1")
            }
            streams[id] = s
            pump(id)
        case .cancel(let id):
            if let s = streams[id] { daemon.engine.cancel(s.transfer) }
        case .ping(let opaque):
            write(.pong(opaque))
        case .pong:
            break
        case .statsRequest(let id, let formatByte):
            guard id != 0 else { throw ReckerError(.invalidStream, "stream 0 is the connection itself") }
            guard let format = StatsReport.Format(rawValue: formatByte) else {
                return streamError(id, ReckerError(.malformedFrame, "unknown stats format \(formatByte)"))
            }
            guard streams[id] == nil, !statsStreams.contains(id) else {
                throw ReckerError(.invalidStream, "stream \(id) is already in flight")
            }
            guard statsStreams.count < Self.maxStatsInProgress else {
                return streamError(id, ReckerError(.tooManyInFlight, "more than \(Self.maxStatsInProgress) stats requests in progress on one connection"))
            }
            statsStreams.insert(id)
            let loop = context.eventLoop
            let me = NIOLoopBound(self, eventLoop: loop)
            daemon.statsReport(format) { body in
                loop.execute {
                    me.value.statsStreams.remove(id)
                    me.value.writeStats(id, body)
                }
            }
        case .hello:
            throw ReckerError(.badHandshake, "HELLO sent twice")
        case .welcome, .responseHead, .responseBody, .responseEnd, .error, .statsResponse:
            throw ReckerError(.malformedFrame, "a daemon-to-client frame was sent by the client")
        }
    }

    private func startRequest(_ id: UInt32, _ head: RequestHead, end: Bool) throws(ReckerError) {
        guard id != 0, streams[id] == nil, !statsStreams.contains(id) else {
            throw ReckerError(.invalidStream, "stream \(id) is \(id == 0 ? "the connection itself" : "already in flight")")
        }
        let config = daemon.config
        guard streams.count < config.maxInFlightPerClient else {
            return streamError(id, ReckerError(.tooManyInFlight, "more than \(config.maxInFlightPerClient) requests in flight on one connection"))
        }
        guard !daemon.isDraining else {
            return streamError(id, ReckerError(.shuttingDown, "reckerd is stopping and takes no new requests"))
        }
        let target: RequestValidator.Target
        do { target = try RequestValidator.validate(head, endRequest: end, limits: config.pool.headerLimits) } catch {
            logger.info("refused request", metadata: ["code": "\(error.code.name)", "reason": "\(error.message)"])
            return streamError(id, error)
        }
        let buffer = config.pool.maxResponseBuffer
        let request = EngineRequest(head: head, target: target, arrival: MonotonicClock.nanoseconds(), hasBody: !end,
                                    responseBuffer: buffer, client: clientID)
        let transfer = daemon.engine.start(request, sink: sink)
        streams[id] = Stream(transfer: transfer, method: head.method, sendWindow: config.streamWindow,
                             receiveWindow: config.streamWindow, requestEnded: end, url: head.url, domain: target.domain,
                             reportEvery: max(1, buffer / 4))
        byTransfer[transfer] = id
    }

    // MARK: - engine events (on the event loop)

    func engineHead(_ transfer: TransferID, _ head: ResponseHead) {
        guard let id = byTransfer[transfer] else { return }
        daemon.noteResponse(uid: peer?.uid ?? UInt32.max, reused: head.reused)
        if logger.logLevel <= .debug, let s = streams[id] {
            logger.debug("\(s.method) \(Redact.url(s.url)) \(head.status)", metadata: [
                "request_id": "\(transfer)", "domain": "\(s.domain)",
                "connection_id": "\(head.connectionID)", "reused": "\(head.reused)",
            ])
        }
        write(.responseHead(stream: id, head))
    }

    func engineBody(_ transfer: TransferID, _ chunk: [UInt8]) {
        guard let id = byTransfer[transfer] else { return }
        streams[id]?.queued.append(chunk)
        pump(id)
    }

    func engineEnd(_ transfer: TransferID, _ end: ResponseEnd) {
        guard let id = byTransfer[transfer] else { return }
        streams[id]?.end = end
        pump(id)
    }

    func engineFailed(_ transfer: TransferID, _ error: ReckerError) {
        guard let id = byTransfer.removeValue(forKey: transfer) else { return }
        if let s = streams[id], error.code != .cancelled {
            logger.info("\(s.method) \(Redact.url(s.url)) failed: \(error.code.name)", metadata: [
                "request_id": "\(transfer)", "domain": "\(s.domain)",
            ])
        }
        streams[id] = nil
        write(.error(stream: id, error))
    }

    func engineBodySent(_ transfer: TransferID, bytes: Int) {
        guard let id = byTransfer[transfer], var s = streams[id], !s.requestEnded || bytes > 0 else { return }
        s.receiveWindow += bytes
        streams[id] = s
        write(.windowUpdate(stream: id, increment: UInt32(bytes)))
    }

    /// Sends a stream's queued body within its window, then its end.
    private func pump(_ id: UInt32) {
        guard var s = streams[id], context.channel.isWritable else { return }
        let maxData = daemon.config.maxFrame - Frame.headerSize
        var sent = 0
        while s.sendWindow > 0, let chunk = s.queued.first {
            let n = min(s.sendWindow, chunk.count - s.queuedOffset, maxData)
            let slice = s.queuedOffset == 0 && n == chunk.count ? chunk : Array(chunk[s.queuedOffset ..< s.queuedOffset + n])
            write(.responseBody(stream: id, slice), flush: false)
            s.sendWindow -= n
            s.queuedOffset += n
            sent += n
            if s.queuedOffset == chunk.count {
                s.queued.removeFirst()
                s.queuedOffset = 0
            }
        }
        // The engine holds at most `responseBuffer` bytes of a response and resumes reading at
        // half that, so reporting progress in quarters keeps it flowing with one wake-up per
        // quarter instead of one per chunk; a finished transfer needs no report at all.
        s.unreported += sent
        if s.end == nil && s.unreported >= s.reportEvery {
            daemon.engine.consumed(s.transfer, bytes: s.unreported)
            s.unreported = 0
        }
        if s.queued.isEmpty, let end = s.end {
            streams[id] = nil
            byTransfer[s.transfer] = nil
            write(.responseEnd(stream: id, end))
        } else {
            streams[id] = s
            if sent > 0 { context.flush() }
        }
    }

    // MARK: - output

    private func write(_ message: Message, flush: Bool = true) {
        guard !closed else { return }
        let bytes: [UInt8]
        do { bytes = try message.encoded } catch {
            // The engine's header limits keep upstream heads encodable; should one still not
            // fit, its stream ends with an error instead of the daemon trapping.
            logger.error("cannot encode a frame for stream \(message.stream): \(error.message)")
            let id = message.stream
            var safe = false
            if let s = streams.removeValue(forKey: id) {
                byTransfer[s.transfer] = nil
                daemon.engine.cancel(s.transfer)
                safe = RequestValidator.isSafeMethod(s.method)
            }
            guard let fallback = try? Message.error(stream: id, ReckerError(.upstreamProtocol, "the response could not be encoded: \(error.message)",
                                                                             mayHaveReachedUpstream: true, retrySafe: safe)).encoded else { return }
            bytes = fallback
        }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        if flush && reading {
            unflushed = true
            context.write(wrapOutboundOut(buffer), promise: nil)
        } else if flush {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
    }

    /// A stats document in as many STATS_RESPONSE frames as `limits.maxFrame` needs.
    private func writeStats(_ id: UInt32, _ document: [UInt8]) {
        let room = daemon.config.maxFrame - Frame.headerSize
        var offset = 0
        repeat {
            let end = min(document.count, offset + room)
            write(.statsResponse(stream: id, json: Array(document[offset ..< end]), more: end < document.count), flush: end == document.count)
            offset = end
        } while offset < document.count
    }

    private func streamError(_ id: UInt32, _ error: ReckerError) {
        write(.error(stream: id, error))
    }

    private func connectionError(_ error: ReckerError) {
        guard !closed else { return }
        logger.info("closing client connection", metadata: ["code": "\(error.code.name)", "reason": "\(error.message)"])
        write(.error(stream: 0, error))
        context.flush()
        closed = true
        context.close(promise: nil)
    }

}

/// The engine's handle on a session: forwards each event to the session's event loop, so
/// the engine thread never blocks on a client. It holds the session weakly: transfers
/// outlive their session by a moment, and the session must not outlive its connection.
final class SessionSink: TransferSink {
    private struct Ref { weak var session: ClientSession? }
    private let ref: NIOLoopBound<Ref>
    private let eventLoop: any EventLoop
    private let gone = Atomic<Bool>(false)

    init(session: ClientSession, eventLoop: any EventLoop) {
        ref = NIOLoopBound(Ref(session: session), eventLoop: eventLoop)
        self.eventLoop = eventLoop
    }

    /// The client's connection closed: what it still had queued is never started.
    func markGone() { gone.store(true, ordering: .relaxed) }

    var isGone: Bool { gone.load(ordering: .relaxed) }

    private func deliver(_ event: @escaping (ClientSession) -> Void) {
        eventLoop.execute { [ref] in
            if let session = ref.value.session { event(session) }
        }
    }

    func transferHead(_ id: TransferID, _ head: ResponseHead) { deliver { $0.engineHead(id, head) } }
    func transferBody(_ id: TransferID, _ chunk: [UInt8]) { deliver { $0.engineBody(id, chunk) } }
    func transferEnd(_ id: TransferID, _ end: ResponseEnd) { deliver { $0.engineEnd(id, end) } }
    func transferFailed(_ id: TransferID, _ error: ReckerError) { deliver { $0.engineFailed(id, error) } }
    func transferBodySent(_ id: TransferID, bytes: Int) { deliver { $0.engineBodySent(id, bytes: bytes) } }
}

/// A weak reference, for timers that must not keep a session alive.
final class WeakBox<T: AnyObject> {
    weak var value: T?
    init(_ value: T) { self.value = value }
}
