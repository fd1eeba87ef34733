import ReckerProtocol

/// The protocol logic of one client connection, without its socket: the handshake,
/// admission, both flow-control windows, the response queue of each stream, cancels and
/// stats requests. Frames and engine events go in, actions come out for `ClientConnection`
/// to carry out (write, start, send body, report progress, cancel, close), so every rule
/// of PROTOCOL.md about a session lives here and is tested without a socket.
package struct SessionStateMachine {
    package enum Action {
        /// Encode and write a frame.
        case write(Message)
        /// Write a RESPONSE_BODY frame of `chunk[range]` (no copy until the output buffer).
        case writeBody(stream: UInt32, chunk: [UInt8], range: Range<Int>)
        /// Something for the engine to do with a request.
        case engine(EngineCommand)
        /// Render the stats in this format, then call `statsReady`.
        case stats(stream: UInt32, StatsFormat)
        /// A response head went to this client (for the per-user counts).
        case responded(reused: Bool)
        /// A line for the log, with fields the journal keeps apart (DOMAIN, REQUEST_ID).
        case log(LogLevel, String, fields: [String: String] = [:])
        /// Write an ERROR frame on stream 0 with this error, then close the connection.
        case close(ReckerError)
    }

    /// A request of this client in flight.
    package struct Stream {
        package var transfer: TransferID
        package var method: String
        /// Response bytes the client still accepts (its window for us).
        package var sendWindow: Int
        /// Request body bytes the client may still send.
        package var receiveWindow: Int
        package var requestEnded: Bool
        package var queued: [[UInt8]] = []
        package var queuedOffset = 0
        package var end: ResponseEnd?
        package var url: String
        package var domain: String
        /// Body bytes sent to the client but not yet reported to the engine, and how many
        /// make a report (`SessionConfig.reportEvery`).
        package var unreported = 0
        package var reportEvery: Int
    }

    /// `closing`: an ERROR on stream 0 is on its way and the socket closes after it; nothing
    /// the client sends is read any more.
    package enum State: Equatable { case awaitingHello, open, closing, closed }

    package private(set) var state = State.awaitingHello
    private var streams: [UInt32: Stream] = [:]
    private var byTransfer: [TransferID: UInt32] = [:]
    private var statsStreams: Set<UInt32> = []
    /// Whether the client asked for the facts block in response heads (feature `FACTS`).
    private var facts = false
    /// False while the client's unread answers pile up (backpressure): nothing is pumped.
    private var writable = true
    package let client: ClientID
    /// The peer's credentials, read when it connected; nil when the kernel would not say.
    package let peer: PeerCredentials?

    package static let maxStatsInProgress = 4
    /// Queued response pieces smaller than this take the next piece in.
    package static let joinBelow = 16 * 1024
    /// A client must say HELLO this soon after connecting, and finish a frame it began this
    /// soon (PROTOCOL.md 1.1).
    package static let handshakeTimeoutNs: UInt64 = 10_000_000_000
    package static let partialFrameTimeoutNs: UInt64 = 10_000_000_000

    private let connectedAt: UInt64
    /// Since when a frame has been begun and not finished (nil while none is).
    private var partialSince: UInt64?

    package init(client: ClientID, peer: PeerCredentials?, now: UInt64) {
        self.client = client
        self.peer = peer
        connectedAt = now
    }

    package var inFlight: Int { streams.count }

    // MARK: - client frames

    /// One frame from the client, with the transfer id a request it starts would take.
    package mutating func receive(_ frame: Frame, transfer: TransferID, config: SessionConfig, draining: Bool, now: UInt64) -> [Action] {
        guard state == .awaitingHello || state == .open else { return [] }
        var actions: [Action] = []
        do throws(ReckerError) {
            // PROTOCOL.md 2.1: any first frame but a HELLO on stream 0 fails the handshake,
            // whatever else is wrong with it (an unknown type, WELCOME, a HELLO on stream 5).
            if state == .awaitingHello && (frame.type != FrameType.hello || frame.stream != 0) {
                throw ReckerError(.badHandshake, "the first frame must be HELLO on stream 0, not frame type 0x\(String(frame.type, radix: 16)) on stream \(frame.stream)")
            }
            // Connection frames belong to stream 0 (PROTOCOL.md 1.1).
            if frame.stream != 0 && (frame.type == FrameType.hello || frame.type == FrameType.ping || frame.type == FrameType.pong) {
                throw ReckerError(.invalidStream, "frame type 0x\(String(frame.type, radix: 16)) belongs to stream 0")
            }
            // Frames only the daemon sends, well-formed or not (PROTOCOL.md 1.1).
            if Self.daemonOnly.contains(frame.type) {
                throw ReckerError(.malformedFrame, "a daemon-to-client frame was sent by the client")
            }
            let message: Message
            do { message = try Message(frame: frame) } catch {
                // A HELLO that does not parse, first or not, fails the handshake.
                if frame.type == FrameType.hello { throw ReckerError(.badHandshake, "HELLO: \(error.message)") }
                throw error
            }
            if state == .awaitingHello {
                try handshake(message, config: config, &actions)
            } else {
                try handle(message, transfer: transfer, config: config, draining: draining, now: now, &actions)
            }
        } catch {
            if error.code.isConnectionError {
                actions.append(contentsOf: close(error))
            } else {
                actions.append(.write(.error(stream: frame.stream, error)))
            }
        }
        return actions
    }

    private static let daemonOnly: Set<UInt8> = [FrameType.welcome, FrameType.responseHead, FrameType.responseBody,
                                                 FrameType.responseEnd, FrameType.error, FrameType.statsResponse]

    private mutating func handshake(_ message: Message, config c: SessionConfig, _ actions: inout [Action]) throws(ReckerError) {
        guard case .hello(let hello) = message else {
            throw ReckerError(.badHandshake, "the first frame must be HELLO")
        }
        guard hello.minVersion <= Message.version && Message.version <= hello.maxVersion else {
            throw ReckerError(.unsupportedVersion, "reckerd speaks protocol version \(Message.version) only; client offered \(hello.minVersion)...\(hello.maxVersion)")
        }
        guard let peer else {
            throw ReckerError(.accessDenied, "reckerd could not read this client's credentials")
        }
        guard c.allows(uid: peer.uid, gids: peer.gids) else {
            actions.append(.log(.notice, "refused client uid \(peer.uid) pid \(peer.pid)"))
            throw ReckerError(.accessDenied, "uid \(peer.uid) is not in allowUsers and none of its groups is in allowGroups")
        }
        state = .open
        let features = hello.features & (Message.Feature.limits | Message.Feature.facts)
        facts = features & Message.Feature.facts != 0
        announced = Limits(c)
        actions.append(.write(.welcome(Message.Welcome(
            version: Message.version, features: features, maxFrame: UInt32(c.maxFrame),
            maxInFlight: UInt32(c.maxInFlightPerClient), initialWindow: UInt32(c.streamWindow),
            headerLimits: features & Message.Feature.limits != 0 ? c.headerLimits : nil))))
    }

    /// The limits WELCOME announced. They hold for the connection's life: a reload that
    /// lowers them applies to connections opened after it (a 100 kB POST on an open
    /// connection failed with FLOW_CONTROL_ERROR after `streamWindow` was lowered).
    package struct Limits: Equatable {
        package let maxFrame: Int
        package let maxInFlight: Int
        package let streamWindow: Int
        package let headerLimits: HeaderLimits

        package init(_ c: SessionConfig) {
            maxFrame = c.maxFrame
            maxInFlight = c.maxInFlightPerClient
            streamWindow = c.streamWindow
            headerLimits = c.headerLimits
        }
    }

    /// Set by the handshake; before it, the config's own (nothing has been announced).
    package private(set) var announced: Limits?

    private func limits(_ config: SessionConfig) -> Limits { announced ?? Limits(config) }

    private mutating func handle(_ message: Message, transfer: TransferID, config: SessionConfig, draining: Bool, now: UInt64,
                                 _ actions: inout [Action]) throws(ReckerError) {
        switch message {
        case .requestHead(let id, let head, let end):
            try startRequest(id, head, end: end, transfer: transfer, config: config, draining: draining, now: now, &actions)
        case .requestBody(let id, let data, let end):
            guard var s = streams[id], !s.requestEnded else { return }
            s.receiveWindow -= data.count
            guard s.receiveWindow >= 0 else {
                throw ReckerError(.flowControlError, "stream \(id) sent \(-s.receiveWindow) body bytes beyond its window")
            }
            s.requestEnded = end
            actions.append(.engine(.sendBody(s.transfer, data, end: end)))
            streams[id] = s
        case .windowUpdate(let id, let increment):
            guard var s = streams[id] else { return }
            s.sendWindow += Int(increment)
            guard s.sendWindow <= Int(Int32.max) else {
                throw ReckerError(.flowControlError, "stream \(id) window above 2^31-1")
            }
            streams[id] = s
            pump(id, config: config, &actions)
        case .cancel(let id):
            if let t = streams[id]?.transfer { actions.append(.engine(.cancel(t))) }
        case .ping(let opaque):
            actions.append(.write(.pong(opaque)))
        case .pong:
            break
        case .statsRequest(let id, let formatByte):
            guard id != 0 else { throw ReckerError(.invalidStream, "stream 0 is the connection itself") }
            guard let format = StatsFormat(rawValue: formatByte) else {
                actions.append(.write(.error(stream: id, ReckerError(.malformedFrame, "unknown stats format \(formatByte)"))))
                return
            }
            guard streams[id] == nil, !statsStreams.contains(id) else {
                throw ReckerError(.invalidStream, "stream \(id) is already in flight")
            }
            guard statsStreams.count < Self.maxStatsInProgress else {
                actions.append(.write(.error(stream: id, ReckerError(.tooManyInFlight, "more than \(Self.maxStatsInProgress) stats requests in progress on one connection"))))
                return
            }
            statsStreams.insert(id)
            actions.append(.stats(stream: id, format))
        case .hello:
            throw ReckerError(.badHandshake, "HELLO sent twice")
        case .welcome, .responseHead, .responseBody, .responseEnd, .error, .statsResponse:
            throw ReckerError(.malformedFrame, "a daemon-to-client frame was sent by the client")
        }
    }

    private mutating func startRequest(_ id: UInt32, _ head: RequestHead, end: Bool, transfer: TransferID, config: SessionConfig,
                                       draining: Bool, now: UInt64, _ actions: inout [Action]) throws(ReckerError) {
        guard id != 0, streams[id] == nil, !statsStreams.contains(id) else {
            throw ReckerError(.invalidStream, "stream \(id) is \(id == 0 ? "the connection itself" : "already in flight")")
        }
        let announced = limits(config)
        guard streams.count < announced.maxInFlight else {
            actions.append(.write(.error(stream: id, ReckerError(.tooManyInFlight, "more than \(announced.maxInFlight) requests in flight on one connection"))))
            return
        }
        guard !draining else {
            actions.append(.write(.error(stream: id, ReckerError(.shuttingDown, "reckerd is stopping and takes no new requests"))))
            return
        }
        let target: RequestValidator.Target
        do { target = try RequestValidator.validate(head, endRequest: end, limits: announced.headerLimits) } catch {
            actions.append(.log(.info, "refused request: \(error.code.name): \(error.message)"))
            actions.append(.write(.error(stream: id, error)))
            return
        }
        let buffer = config.responseBuffer
        let request = EngineRequest(head: head, target: target, arrival: now, hasBody: !end, responseBuffer: buffer,
                                    client: client, user: TurnKey.of(uid: peer?.uid, connection: client))
        streams[id] = Stream(transfer: transfer, method: head.method, sendWindow: announced.streamWindow, receiveWindow: announced.streamWindow,
                             requestEnded: end, url: head.url, domain: target.domain, reportEvery: SessionConfig.reportEvery(buffer: buffer))
        byTransfer[transfer] = id
        actions.append(.engine(.start(transfer, request)))
    }

    // MARK: - engine events

    package mutating func responseHead(_ transfer: TransferID, _ head: ResponseHead, debug: Bool) -> [Action] {
        guard let id = byTransfer[transfer], let s = streams[id] else { return [] }
        var actions: [Action] = [.responded(reused: head.reused)]
        if debug {
            actions.append(.log(.debug, "\(s.method) \(Redact.url(s.url)) \(head.status) request_id=\(transfer) domain=\(s.domain) connection_id=\(head.connectionID) reused=\(head.reused)"))
        }
        var head = head
        if !facts { head.facts = nil }
        actions.append(.write(.responseHead(stream: id, head)))
        return actions
    }

    package mutating func responseBody(_ transfer: TransferID, _ chunk: [UInt8], config: SessionConfig) -> [Action] {
        guard let id = byTransfer[transfer], streams[id] != nil else { return [] }
        // Small pieces join the last one queued, so a response arriving in tiny pieces costs
        // few queue entries (each is sent from its start, or from queuedOffset if first).
        if let last = streams[id]!.queued.indices.last, streams[id]!.queued[last].count < Self.joinBelow {
            streams[id]!.queued[last].append(contentsOf: chunk)
        } else {
            streams[id]!.queued.append(chunk)
        }
        var actions: [Action] = []
        pump(id, config: config, &actions)
        return actions
    }

    package mutating func responseEnd(_ transfer: TransferID, _ end: ResponseEnd, config: SessionConfig) -> [Action] {
        guard let id = byTransfer[transfer] else { return [] }
        streams[id]?.end = end
        var actions: [Action] = []
        pump(id, config: config, &actions)
        return actions
    }

    package mutating func failed(_ transfer: TransferID, _ error: ReckerError) -> [Action] {
        guard let id = byTransfer.removeValue(forKey: transfer) else { return [] }
        var actions: [Action] = []
        if let s = streams[id], error.code != .cancelled {
            actions.append(.log(.warning, "\(s.method) \(Redact.url(s.url)) failed: \(error.code.name): \(error.message)",
                                fields: ["request_id": "\(transfer)", "domain": s.domain]))
        }
        streams[id] = nil
        actions.append(.write(.error(stream: id, error)))
        return actions
    }

    package mutating func bodySent(_ transfer: TransferID, bytes: Int) -> [Action] {
        guard let id = byTransfer[transfer], var s = streams[id], !s.requestEnded || bytes > 0 else { return [] }
        s.receiveWindow += bytes
        streams[id] = s
        return [.write(.windowUpdate(stream: id, increment: UInt32(clamping: bytes)))]
    }

    /// A frame for `stream` could not be encoded: the stream ends with an error instead.
    package mutating func encodingFailed(stream id: UInt32, _ error: ReckerError) -> [Action] {
        var actions: [Action] = [.log(.error, "cannot encode a frame for stream \(id): \(error.message)")]
        var safe = false
        if let s = streams.removeValue(forKey: id) {
            byTransfer[s.transfer] = nil
            actions.append(.engine(.cancel(s.transfer)))
            safe = RequestValidator.isSafeMethod(s.method)
        }
        actions.append(.write(.error(stream: id, ReckerError(.upstreamProtocol, "the response could not be encoded: \(error.message)",
                                                            mayHaveReachedUpstream: true, retrySafe: safe))))
        return actions
    }

    // MARK: - the connection

    /// The client's unread answers passed the high mark (false) or fell below the low one.
    package mutating func writabilityChanged(_ writable: Bool, config: SessionConfig) -> [Action] {
        self.writable = writable
        guard writable else { return [] }
        var actions: [Action] = []
        for id in Array(streams.keys) { pump(id, config: config, &actions) }
        return actions
    }

    /// A stats document, in as many STATS_RESPONSE frames as `limits.maxFrame` needs.
    package mutating func statsReady(stream id: UInt32, _ document: [UInt8], config: SessionConfig) -> [Action] {
        guard statsStreams.remove(id) != nil, state == .open else { return [] }
        let room = limits(config).maxFrame - Frame.headerSize
        var actions: [Action] = []
        var offset = 0
        repeat {
            let end = min(document.count, offset + room)
            actions.append(.write(.statsResponse(stream: id, json: Array(document[offset ..< end]), more: end < document.count)))
            offset = end
        } while offset < document.count
        return actions
    }

    /// The connection fails with `error` (a connection error, a timeout): said on stream 0,
    /// then closed.
    package mutating func close(_ error: ReckerError) -> [Action] {
        guard state == .awaitingHello || state == .open else { return [] }
        state = .closing
        return [.log(.info, "closing client connection: \(error.code.name): \(error.message)"), .close(error)]
    }

    // MARK: - time

    /// What is left of the input after the frames read so far: whether a frame has begun
    /// (its timer starts now unless it already runs) or not.
    package mutating func inputBuffered(partialFrame: Bool, now: UInt64) {
        if !partialFrame {
            partialSince = nil
        } else if partialSince == nil {
            partialSince = now
        }
    }

    /// When `timedOut` has something to do: the end of the handshake's time, or of the
    /// time a begun frame has to finish; nil when no timer runs.
    package func deadline() -> UInt64? {
        guard state == .awaitingHello || state == .open else { return nil }
        let handshake = state == .awaitingHello ? connectedAt &+ Self.handshakeTimeoutNs : UInt64.max
        let partial = partialSince.map { $0 &+ Self.partialFrameTimeoutNs } ?? .max
        let first = min(handshake, partial)
        return first == .max ? nil : first
    }

    /// The deadline passed (a caller may come early: nothing happens before it).
    package mutating func timedOut(now: UInt64) -> [Action] {
        if state == .awaitingHello && now >= connectedAt &+ Self.handshakeTimeoutNs {
            return close(ReckerError(.badHandshake, "no HELLO within \(Self.handshakeTimeoutNs / 1_000_000_000) s"))
        }
        if let since = partialSince, now >= since &+ Self.partialFrameTimeoutNs {
            return close(ReckerError(.malformedFrame, "frame incomplete for \(Self.partialFrameTimeoutNs / 1_000_000_000) s"))
        }
        return []
    }

    /// The socket is closed, or lingers with its write side shut: every request still in
    /// flight is cancelled.
    package mutating func closed() -> [Action] {
        state = .closed
        let actions = streams.values.map { Action.engine(.cancel($0.transfer)) }
        streams.removeAll()
        byTransfer.removeAll()
        statsStreams.removeAll()
        return actions
    }

    /// Sends a stream's queued body within its window, then its end.
    private mutating func pump(_ id: UInt32, config: SessionConfig, _ actions: inout [Action]) {
        // Taken out of the dictionary while it changes, so its queue is not copied.
        guard writable, var s = streams.removeValue(forKey: id) else { return }
        let maxData = limits(config).maxFrame - Frame.headerSize
        var sent = 0
        while s.sendWindow > 0, let chunk = s.queued.first {
            let n = min(s.sendWindow, chunk.count - s.queuedOffset, maxData)
            actions.append(.writeBody(stream: id, chunk: chunk, range: s.queuedOffset ..< s.queuedOffset + n))
            s.sendWindow -= n
            s.queuedOffset += n
            sent += n
            if s.queuedOffset == chunk.count {
                s.queued.removeFirst()
                s.queuedOffset = 0
            }
        }
        // Progress goes to the engine every `reportEvery` bytes (SessionConfig), not per
        // chunk; a finished transfer needs no report at all.
        s.unreported += sent
        if s.end == nil && s.unreported >= s.reportEvery {
            actions.append(.engine(.consumed(s.transfer, s.unreported)))
            s.unreported = 0
        }
        if s.queued.isEmpty, let end = s.end {
            streams[id] = nil
            byTransfer[s.transfer] = nil
            actions.append(.write(.responseEnd(stream: id, end)))
        } else {
            streams[id] = s
        }
    }
}
