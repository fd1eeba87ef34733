import Glibc
import Logging
import ReckerLoop
import ReckerPool
import ReckerProtocol

/// One client connection's socket: reads frames into its `SessionStateMachine`, carries out
/// what the machine decides, and buffers everything written to the client until the end of
/// the loop pass, when it goes out in one system call. Loop-confined, like the daemon.
final class ClientConnection: EngineEvents {
    private let fd: Int32
    private var registration: EventLoop.Registration?
    private unowned let daemon: Daemon
    private var machine: SessionStateMachine
    let sink: ConnectionSink<ClientConnection>
    private var input: [UInt8] = []
    private var inputStart = 0
    private var output: [UInt8] = []
    private var outputStart = 0
    /// Whether reading is paused because the client does not read its answers.
    private var backpressured = false
    /// Whether frames already read wait for this client's next turn (`decode`).
    private var resuming = false
    private var queuedForFlush = false
    private(set) var isClosed = false
    private var closing = false
    private var handshakeTimer: EventLoop.TimerID?
    private var partialTimer: EventLoop.TimerID?
    /// Set while the connection lingers after a connection error (`lingerAndClose`).
    private var lingerTimer: EventLoop.TimerID?
    static let lingerNs: UInt64 = 1_000_000_000
    /// Counted among its user's connections (not when refused for having too many).
    var registered = false

    /// Past this many unwritten bytes the client is read no more until it falls below
    /// `lowWater`: a client that sends without reading cannot grow the daemon's memory.
    static let highWater = 1024 * 1024
    static let lowWater = 256 * 1024
    /// A client must say HELLO this soon after connecting, and finish a frame it began this
    /// soon (PROTOCOL.md 1.1).
    static let handshakeTimeoutNs: UInt64 = 10_000_000_000
    static let partialFrameTimeoutNs: UInt64 = 10_000_000_000
    private static let readSize = 64 * 1024
    /// Frames handled per connection per loop pass.
    static let framesPerTurn = 64

    var peer: PeerCredentials? { machine.peer }

    init(fd: Int32, daemon: Daemon, peer: PeerCredentials?, client: ClientID) {
        self.fd = fd
        self.daemon = daemon
        machine = SessionStateMachine(client: client, peer: peer)
        sink = ConnectionSink()
    }

    /// Starts reading; `refusal` (too many connections of one user) is said and the
    /// connection closed instead.
    func start(refusal: ReckerError?) {
        sink.connection = self
        let loop = daemon.loop
        do {
            registration = try loop.register(fd, .readable) { [unowned self] events in ready(events) }
        } catch {
            daemon.logger.error("cannot watch a client connection: \(error)")
            closeNow()
            return
        }
        if let refusal {
            run(machine.close(refusal))
            return
        }
        handshakeTimer = loop.schedule(at: loop.now &+ Self.handshakeTimeoutNs) { [weak self] in
            guard let self, !isClosed else { return }
            handshakeTimer = nil
            if machine.state == .awaitingHello {
                run(machine.close(ReckerError(.badHandshake, "no HELLO within \(Self.handshakeTimeoutNs / 1_000_000_000) s")))
            }
        }
    }

    // MARK: - reading

    private func ready(_ events: EventLoop.Events) {
        guard !isClosed else { return }
        if lingerTimer != nil { return discardUntilEOF() }
        if events.contains(.writable) { flush() }
        if !isClosed && !backpressured && !resuming && !events.isDisjoint(with: [.readable, .hangup, .readHangup, .error]) { readFrames() }
    }

    private func readFrames() {
        let (n, err) = SystemError.retrying {
            daemon.scratch.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        }
        if n < 0 {
            if err == EAGAIN || err == EWOULDBLOCK { return }
            closeNow()
            return
        }
        if n == 0 {
            // The client is gone; a frame it had begun is simply dropped with it.
            closeNow()
            return
        }
        input.append(contentsOf: daemon.scratch[0 ..< n])
        decode()
    }

    /// Hands the complete frames in the input to the machine, at most `framesPerTurn` in
    /// one loop pass: the rest wait for the next pass, after every other connection ready
    /// then has had its turn, and nothing more is read from this client meanwhile. So a
    /// client sending floods of cheap frames (PINGs, WINDOW_UPDATEs) delays the others by
    /// one turn, not by its whole backlog.
    private func decode() {
        let config = daemon.config
        var budget = Self.framesPerTurn
        while !isClosed && !closing {
            let available = input.count - inputStart
            guard available >= 4 else { break }
            let length = UInt32(input[inputStart]) << 24 | UInt32(input[inputStart + 1]) << 16
                | UInt32(input[inputStart + 2]) << 8 | UInt32(input[inputStart + 3])
            do throws(ReckerError) {
                try Frame.checkLength(length, max: machine.announced?.maxFrame ?? config.maxFrame)
            } catch {
                run(machine.close(error))
                return
            }
            guard available >= 4 + Int(length) else { break }
            guard budget > 0 else {
                resumeNextPass()
                return
            }
            budget -= 1
            let p = inputStart + 4
            let stream = UInt32(input[p + 2]) << 24 | UInt32(input[p + 3]) << 16 | UInt32(input[p + 4]) << 8 | UInt32(input[p + 5])
            let frame = Frame(type: input[p], flags: input[p + 1], stream: stream,
                              body: Array(input[(p + Frame.headerSize) ..< (p + Int(length))]))
            inputStart = p + Int(length)
            run(machine.receive(frame, config: config, draining: daemon.isDraining, now: daemon.loop.now))
        }
        Self.compact(&input, &inputStart, keepCapacityUpTo: 2 * Self.readSize, after: Self.readSize)
        notePartialFrame()
    }

    /// Frames wait in the input for the next pass; reading stops until they are handled.
    private func resumeNextPass() {
        guard !resuming else { return }
        resuming = true
        updateInterest()
        daemon.loop.nextPass { [weak self] in
            guard let self, !isClosed else { return }
            resuming = false
            updateInterest()
            decode()
        }
    }

    /// A frame begun must be complete within the timeout; the timer runs while one is.
    private func notePartialFrame() {
        let partial = input.count > inputStart
        if !partial, let t = partialTimer {
            daemon.loop.cancel(t)
            partialTimer = nil
        } else if partial && partialTimer == nil && !isClosed {
            let loop = daemon.loop
            partialTimer = loop.schedule(at: loop.now &+ Self.partialFrameTimeoutNs) { [weak self] in
                guard let self, !isClosed else { return }
                partialTimer = nil
                if input.count > inputStart {
                    run(machine.close(ReckerError(.malformedFrame, "frame incomplete for \(Self.partialFrameTimeoutNs / 1_000_000_000) s")))
                }
            }
        }
    }

    // MARK: - carrying out the machine's actions

    private func run(_ actions: [SessionStateMachine.Action]) {
        for action in actions {
            guard !isClosed else { return }
            switch action {
            case .write(let message):
                write(message)
            case .writeBody(let stream, let chunk, let range):
                writeBody(stream, chunk, range)
            case .start(let stream, let request):
                let engine = daemon.engine
                let id = engine.makeTransferID()
                run(machine.started(stream: stream, transfer: id))
                engine.start(id, request, sink: sink)
            case .sendBody(let id, let data, let end):
                daemon.engine.sendBody(id, data, end: end)
            case .consumed(let id, let n):
                daemon.engine.consumed(id, bytes: n)
            case .cancel(let id):
                daemon.engine.cancel(id)
            case .stats(let stream, let format):
                daemon.statsReport(format, for: .of(uid: machine.peer?.uid, daemonUID: daemon.uid)) { [weak self] document in
                    guard let self, !isClosed else { return }
                    run(machine.statsReady(stream: stream, document, config: daemon.config))
                }
            case .responded(let reused):
                daemon.noteResponse(uid: machine.peer?.uid ?? UInt32.max, reused: reused)
            case .log(let level, let text, let fields):
                daemon.logger.log(level: level, "\(text)", metadata: fields.isEmpty ? nil : fields.mapValues { .string($0) })
            case .close(let error):
                write(.error(stream: 0, error))
                closing = true
                flush()
                lingerAndClose()
            }
        }
        if machine.state == .open, let t = handshakeTimer {
            daemon.loop.cancel(t)
            handshakeTimer = nil
        }
    }

    // MARK: - engine events (loop thread)

    func engineHead(_ id: TransferID, _ head: ResponseHead) {
        run(machine.responseHead(id, head, debug: daemon.logger.logLevel <= .debug))
    }

    func engineBody(_ id: TransferID, _ chunk: [UInt8]) { run(machine.responseBody(id, chunk, config: daemon.config)) }
    func engineEnd(_ id: TransferID, _ end: ResponseEnd) { run(machine.responseEnd(id, end, config: daemon.config)) }
    func engineFailed(_ id: TransferID, _ error: ReckerError) { run(machine.failed(id, error)) }
    func engineBodySent(_ id: TransferID, bytes: Int) { run(machine.bodySent(id, bytes: bytes)) }

    // MARK: - writing

    private func write(_ message: Message) {
        do throws(ReckerError) {
            let bytes = try message.encoded
            output.append(contentsOf: bytes)
        } catch {
            run(machine.encodingFailed(stream: message.stream, error))
            return
        }
        wrote()
    }

    /// A RESPONSE_BODY frame straight into the output buffer.
    private func writeBody(_ stream: UInt32, _ chunk: [UInt8], _ range: Range<Int>) {
        let length = UInt32(Frame.headerSize + range.count)
        output.append(UInt8(truncatingIfNeeded: length >> 24))
        output.append(UInt8(truncatingIfNeeded: length >> 16))
        output.append(UInt8(truncatingIfNeeded: length >> 8))
        output.append(UInt8(truncatingIfNeeded: length))
        output.append(FrameType.responseBody)
        output.append(0)
        output.append(UInt8(truncatingIfNeeded: stream >> 24))
        output.append(UInt8(truncatingIfNeeded: stream >> 16))
        output.append(UInt8(truncatingIfNeeded: stream >> 8))
        output.append(UInt8(truncatingIfNeeded: stream))
        output.append(contentsOf: chunk[range])
        wrote()
    }

    private func wrote() {
        if !queuedForFlush {
            queuedForFlush = true
            daemon.flushAtEndOfPass(self)
        }
        if !backpressured && output.count - outputStart > Self.highWater {
            backpressured = true
            updateInterest()
            run(machine.writabilityChanged(false, config: daemon.config))
        }
    }

    /// Writes what is buffered; what the socket does not take waits for it to be writable.
    func flush() {
        queuedForFlush = false
        guard !isClosed, outputStart < output.count else { return }
        let (n, err) = SystemError.retrying {
            output.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + outputStart, $0.count - outputStart) }
        }
        if n < 0 {
            if err == EAGAIN || err == EWOULDBLOCK {
                updateInterest()
                return
            }
            closeNow()
            return
        }
        outputStart += n
        Self.compact(&output, &outputStart, keepCapacityUpTo: 4 * Self.readSize, after: Self.lowWater)
        if backpressured && output.count - outputStart < Self.lowWater {
            backpressured = false
            updateInterest()
            run(machine.writabilityChanged(true, config: daemon.config))
            // Frames that arrived while reading was paused are still in the input.
            if !isClosed { decode() }
        } else {
            updateInterest()
        }
    }

    /// Drops the consumed front of a buffer (`start` bytes): all of it once consumed, keeping
    /// an allocation up to `keepCapacityUpTo`; else once more than `after` bytes are consumed.
    private static func compact(_ buffer: inout [UInt8], _ start: inout Int, keepCapacityUpTo: Int, after: Int) {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= keepCapacityUpTo)
            start = 0
        } else if start > after {
            buffer.removeFirst(start)
            start = 0
        }
    }

    private func updateInterest() {
        guard let registration, !isClosed else { return }
        var interest: EventLoop.Events = backpressured || resuming ? [] : .readable
        if outputStart < output.count { interest.insert(.writable) }
        daemon.loop.modify(registration, interest)
    }

    // MARK: - closing

    /// After a connection error: the ERROR frame has gone out, so the write side is shut
    /// and what the client still sends is read and dropped until it closes, for up to a
    /// second (nginx's lingering close). Its HELLO written just after a refusal at the door
    /// then does not fail with EPIPE before it has read why. Its requests end at once.
    private func lingerAndClose() {
        guard !isClosed, lingerTimer == nil else { return }
        guard outputStart == output.count else { return closeNow() }
        sink.markGone()
        for action in machine.closed() {
            if case .cancel(let id) = action { daemon.engine.cancel(id) }
        }
        if let t = handshakeTimer { daemon.loop.cancel(t) }
        if let t = partialTimer { daemon.loop.cancel(t) }
        handshakeTimer = nil
        partialTimer = nil
        shutdown(fd, Int32(SHUT_WR))
        let loop = daemon.loop
        lingerTimer = loop.schedule(at: loop.now &+ Self.lingerNs) { [weak self] in self?.closeNow() }
        if let registration { loop.modify(registration, .readable) }
    }

    private func discardUntilEOF() {
        let (n, err) = SystemError.retrying {
            daemon.scratch.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        }
        if n == 0 || (n < 0 && err != EAGAIN && err != EWOULDBLOCK) { closeNow() }
    }

    /// Closes the socket at once and cancels whatever the client still had in flight.
    func closeNow() {
        guard !isClosed else { return }
        isClosed = true
        if let t = lingerTimer { daemon.loop.cancel(t) }
        lingerTimer = nil
        sink.markGone()
        if let t = handshakeTimer { daemon.loop.cancel(t) }
        if let t = partialTimer { daemon.loop.cancel(t) }
        if let registration { daemon.loop.unregister(registration) }
        Glibc.close(fd)
        for action in machine.closed() {
            if case .cancel(let id) = action { daemon.engine.cancel(id) }
        }
        daemon.clientDisconnected(self)
        sink.connection = nil
    }
}
