import Logging
import ReckerLoop
import ReckerPool
import ReckerProtocol
import ReckerSession

/// One client of reckerd's own protocol: its socket's bytes become frames (`FrameReader`)
/// for its `SessionStateMachine`, and what the machine decides is carried out here (write,
/// start, send body, cancel, close) on the shared `ClientSocket`. Loop-confined, like the
/// daemon.
final class ClientConnection: DaemonClient, ClientSocketOwner, EngineEvents {
    private unowned let daemon: Daemon
    private let socket: ClientSocket
    private var machine: SessionStateMachine
    private var reader: FrameReader
    /// Too many connections of one user: said at start, then the connection closes.
    private let refusal: ReckerError?
    let sink: ConnectionSink<ClientConnection>
    var registered = false
    /// Whether frames already read wait for this client's next turn (`decode`).
    private var resuming = false

    /// Frames handled per connection per loop pass.
    static let framesPerTurn = 64

    var peer: PeerCredentials? { machine.peer }
    var countedAs: UInt32? { peer?.uid }

    init(fd: Int32, daemon: Daemon, peer: PeerCredentials?, client: ClientID, refusal: ReckerError?) {
        self.daemon = daemon
        socket = ClientSocket(fd: fd, daemon: daemon)
        sink = ConnectionSink(loop: daemon.loop)
        machine = SessionStateMachine(client: client, peer: peer, now: daemon.loop.now)
        reader = FrameReader(maxLength: daemon.config.maxFrame)
        self.refusal = refusal
    }

    func start() {
        sink.connection = self
        guard socket.start(owner: self) else { return }
        if let refusal { return run(machine.close(refusal)) }
        socket.wake(by: machine.deadline())
    }

    func closeNow() { socket.closeNow() }

    // MARK: - reading

    var wantsInput: Bool { !resuming }

    func received(_ bytes: ArraySlice<UInt8>) {
        reader.append(bytes)
        decode()
    }

    /// The client has left (PROTOCOL.md 1): a frame it had begun is dropped with it, its
    /// requests end, and what was written to it before goes out before the close.
    func inputEnded() {
        endRequests()
        socket.closeAfterWriting(within: daemon.loop.now &+ Self.lastOutputNs)
    }

    /// How long a closing connection's last output may take to be read (PROTOCOL.md 1).
    static let lastOutputNs: UInt64 = 10_000_000_000

    /// Every request of the connection ends now: cancelled upstream, never started if queued.
    private func endRequests() {
        sink.markGone()
        for case .engine(let command) in machine.closed() { daemon.engine.perform(command, sink: sink) }
    }

    /// Hands the complete frames read to the machine, at most `framesPerTurn` in one loop
    /// pass: the rest wait for the next pass, after every other connection ready then has
    /// had its turn, and nothing more is read from this client meanwhile. So a client
    /// sending floods of cheap frames (PINGs, WINDOW_UPDATEs) delays the others by one turn,
    /// not by its whole backlog.
    private func decode() {
        let config = daemon.session
        var budget = Self.framesPerTurn
        while !socket.isClosing {
            reader.maxLength = machine.announced?.maxFrame ?? config.maxFrame
            let frame: Frame
            do throws(ReckerError) {
                guard let next = try reader.next() else { break }
                frame = next
            } catch {
                return run(machine.close(error))
            }
            run(machine.receive(frame, transfer: daemon.engine.makeTransferID(), config: config,
                                draining: daemon.isDraining, now: daemon.loop.now))
            budget -= 1
            if budget == 0 && reader.buffered > 0 { return resumeNextPass() }
        }
        // A frame's rest the daemon is not reading (its output is over the high water) is
        // not late: the timer runs only while the client is read (PROTOCOL.md 1.1).
        machine.inputBuffered(partialFrame: reader.buffered > 0 && !socket.backpressured, now: daemon.loop.now)
        socket.wake(by: machine.deadline())
    }

    /// Frames wait in the reader for the next pass; reading stops until they are handled.
    private func resumeNextPass() {
        guard !resuming else { return }
        resuming = true
        socket.updateInterest()
        daemon.loop.nextPass { [weak self] in
            guard let self, !socket.isClosed else { return }
            resuming = false
            socket.updateInterest()
            decode()
        }
    }

    func deadlineReached(now: UInt64) {
        run(machine.timedOut(now: now))
        socket.wake(by: machine.deadline())
    }

    // MARK: - carrying out the machine's actions

    private func run(_ actions: [SessionStateMachine.Action]) {
        for action in actions {
            guard !socket.isClosed else { return }
            switch action {
            case .write(let message):
                write(message)
            case .writeBody(let stream, let chunk, let range):
                socket.write { output in Frame.appendResponseBody(stream: stream, chunk[range], to: &output) }
            case .engine(let command):
                daemon.engine.perform(command, sink: sink)
            case .stats(let stream, let format):
                daemon.statsReport(format, for: .of(uid: machine.peer?.uid, daemonUID: daemon.uid)) { [weak self] document in
                    guard let self, !socket.isClosed else { return }
                    run(machine.statsReady(stream: stream, document, config: daemon.session))
                }
            case .responded(let reused):
                daemon.noteResponse(uid: machine.peer?.uid ?? UInt32.max, reused: reused)
            case .log(let level, let text, let fields):
                daemon.logger.log(level: Logger.Level(level), "\(text)", metadata: fields.isEmpty ? nil : fields.mapValues { .string($0) })
            case .close(let error):
                write(.error(stream: 0, error))
                endRequests()
                socket.closeAfterWriting(within: daemon.loop.now &+ Self.lastOutputNs)
            }
        }
    }

    private func write(_ message: Message) {
        do throws(ReckerError) {
            socket.write(try message.encoded)
        } catch {
            run(machine.encodingFailed(stream: message.stream, error))
        }
    }

    // MARK: - the socket's news

    func outputTaken() {}

    func writabilityChanged(_ writable: Bool) {
        run(machine.writabilityChanged(writable, config: daemon.session))
        if writable {
            // Frames that arrived while the output was over its high water are still in the reader.
            if !socket.isClosed { decode() }
        } else {
            // Reading stops: a frame begun waits on the daemon now, not on the client.
            machine.inputBuffered(partialFrame: false, now: daemon.loop.now)
        }
    }

    /// After a connection error, its ERROR frame out (its requests ended with it): what the
    /// client still sends is read and dropped (a HELLO written just after a refusal at the
    /// door then does not fail with EPIPE before the client has read why).
    func lingerBegan() { endRequests() }

    func socketClosed() {
        endRequests()
        daemon.clientDisconnected(self)
        sink.connection = nil
    }

    // MARK: - engine events (loop thread)

    func engineHead(_ id: TransferID, _ head: ResponseHead) {
        run(machine.responseHead(id, head, debug: daemon.logger.logLevel <= .debug))
    }

    func engineBody(_ id: TransferID, _ chunk: [UInt8]) { run(machine.responseBody(id, chunk, config: daemon.session)) }
    func engineEnd(_ id: TransferID, _ end: ResponseEnd) { run(machine.responseEnd(id, end, config: daemon.session)) }
    func engineFailed(_ id: TransferID, _ error: ReckerError) { run(machine.failed(id, error)) }
    func engineBodySent(_ id: TransferID, bytes: Int) { run(machine.bodySent(id, bytes: bytes)) }
}
