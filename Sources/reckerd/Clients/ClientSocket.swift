import Glibc
import ReckerLoop

/// What a client socket tells the connection that owns it (the binary protocol's or the
/// HTTP front's). Called on the loop's thread, from inside the socket's own handlers.
protocol ClientSocketOwner: AnyObject {
    /// Whether the owner takes more input now. The socket also stops reading by itself while
    /// its output is over the high water mark, after the client's EOF, and once it closes.
    var wantsInput: Bool { get }
    /// Bytes the client sent, valid only during the call.
    func received(_ bytes: ArraySlice<UInt8>)
    /// The client shut its sending side (a read returned 0).
    func inputEnded()
    /// The client's socket took some of the output.
    func outputTaken()
    /// The output rose past the high water mark (false) or fell below the low one (true).
    func writabilityChanged(_ writable: Bool)
    /// Lingering began: the last output is out and the write side shut, so whatever the
    /// client still had in flight ends now.
    func lingerBegan()
    /// The time `wake(by:)` asked for has come (`now` is the loop's).
    func deadlineReached(now: UInt64)
    /// The descriptor is closed; the owner lets go of everything it holds.
    func socketClosed()
}

/// One client connection's socket, whatever protocol it speaks: the descriptor and its
/// registration, reading into the owner, the output buffer with its water marks, the flush
/// at the end of the loop pass, the lingering close and the close. What the bytes mean, and
/// when to stop reading or close, is the owner's (its machine's) to decide. Loop-confined.
final class ClientSocket {
    private let fd: Int32
    private unowned let daemon: Daemon
    private weak var owner: (any ClientSocketOwner)?
    private var registration: EventLoop.Registration?
    private var output: [UInt8] = []
    private var outputStart = 0
    private var queuedForFlush = false
    /// Reading is paused because the client does not read its answers.
    private(set) var backpressured = false
    /// The client shut its sending side.
    private(set) var inputEnded = false
    private(set) var isClosed = false
    /// Close (lingering) once the output is out, and read nothing more meanwhile.
    private var closeWhenWritten = false
    /// Closes at once if the output is not out by then (`closeAfterWriting(within:)`).
    private var drainTimer: EventLoop.TimerID?
    private var lingerTimer: EventLoop.TimerID?
    /// The owner's one timer (its machine's next deadline) and when it fires.
    private var timer: EventLoop.TimerID?
    private var timerAt: UInt64 = .max

    /// Past this many unwritten bytes the client is read no more until it falls below
    /// `lowWater`: a client that sends without reading cannot grow the daemon's memory.
    static let highWater = 1024 * 1024
    static let lowWater = 256 * 1024
    /// How long a closing connection reads and drops what the client still sends.
    static let lingerNs: UInt64 = 1_000_000_000
    /// Output buffers keep an allocation up to this size once written out.
    private static let keptCapacity = 256 * 1024

    init(fd: Int32, daemon: Daemon) {
        self.fd = fd
        self.daemon = daemon
    }

    /// Registers with the loop and starts reading for `owner`; false (and closed) when the
    /// loop cannot watch the descriptor.
    func start(owner: any ClientSocketOwner) -> Bool {
        daemon.loop.assertOnLoop()
        self.owner = owner
        do {
            registration = try daemon.loop.register(fd, .readable) { [unowned self] events in ready(events) }
        } catch {
            daemon.logger.error("cannot watch a client connection: \(error)")
            closeNow()
            return false
        }
        return true
    }

    /// For TCP clients: small answers go out at once.
    func setNoDelay() {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Whether a close has begun: closed, lingering, or writing its last output.
    var isClosing: Bool { isClosed || closeWhenWritten || lingerTimer != nil }

    /// Output not yet taken by the client's socket.
    var unwritten: Int { output.count - outputStart }

    // MARK: - reading

    private var wantsRead: Bool {
        !isClosed && lingerTimer == nil && !backpressured && !inputEnded && !closeWhenWritten && owner?.wantsInput == true
    }

    private func ready(_ events: EventLoop.Events) {
        guard !isClosed else { return }
        if lingerTimer != nil { return discardUntilEOF() }
        // Half-closed, then gone altogether (HUP is reported whatever the interest): no one
        // is left to answer, and the event would come back on every pass.
        if inputEnded && !events.isDisjoint(with: [.hangup, .error]) { return closeNow() }
        if events.contains(.writable) { flush() }
        if wantsRead && !events.isDisjoint(with: [.readable, .hangup, .readHangup, .error]) { read() }
    }

    private func read() {
        let (n, err) = SystemError.retrying {
            daemon.scratch.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        }
        if n < 0 {
            if err == EAGAIN || err == EWOULDBLOCK { return }
            return closeNow()
        }
        if n == 0 {
            inputEnded = true
            owner?.inputEnded()
            return updateInterest()
        }
        owner?.received(daemon.scratch[0 ..< n])
    }

    // MARK: - writing

    /// Appends to the output, which goes out at the end of this loop pass.
    func write(_ bytes: [UInt8]) {
        output.append(contentsOf: bytes)
        wrote()
    }

    /// Appends by hand (a frame header, then its payload) with no array of its own.
    func write(_ append: (inout [UInt8]) -> Void) {
        append(&output)
        wrote()
    }

    /// The output goes out at the end of this loop pass, with everything written meanwhile.
    private func flushAtEndOfPass() {
        guard !queuedForFlush else { return }
        queuedForFlush = true
        daemon.flushAtEndOfPass(self)
    }

    private func wrote() {
        flushAtEndOfPass()
        if !backpressured && unwritten > Self.highWater {
            backpressured = true
            updateInterest()
            owner?.writabilityChanged(false)
        }
    }

    /// Writes what is buffered; what the socket does not take waits for it to be writable.
    func flush() {
        queuedForFlush = false
        guard !isClosed, lingerTimer == nil else { return }
        if outputStart < output.count {
            let (n, err) = SystemError.retrying {
                output.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + outputStart, $0.count - outputStart) }
            }
            if n < 0 {
                if err == EAGAIN || err == EWOULDBLOCK { return updateInterest() }
                return closeNow()
            }
            outputStart += n
            if n > 0 { owner?.outputTaken() }
            if isClosed { return }
        }
        if outputStart == output.count {
            output.removeAll(keepingCapacity: output.capacity <= Self.keptCapacity)
            outputStart = 0
            if closeWhenWritten { return lingerAndClose() }
        } else if outputStart > Self.lowWater {
            output.removeFirst(outputStart)
            outputStart = 0
        }
        if backpressured && unwritten < Self.lowWater {
            backpressured = false
            // What the client sent while it was not read (a CANCEL, a PING, a request) is
            // read before its output is refilled: a response it granted a large window would
            // otherwise cross the high water again at once, in this same call, and keep its
            // input unread for as long as it streams (RobustnessTests, a PING during a download).
            if wantsRead { read() }
            if isClosed { return }
            owner?.writabilityChanged(true)
        }
        updateInterest()
    }

    /// Recomputes what the loop watches for: reading as `wantsRead` says, writing while
    /// output waits. The owner calls it when its `wantsInput` changes.
    func updateInterest() {
        guard let registration, !isClosed, lingerTimer == nil else { return }
        var interest: EventLoop.Events = wantsRead ? .readable : []
        if outputStart < output.count { interest.insert(.writable) }
        daemon.loop.modify(registration, interest)
    }

    // MARK: - time

    /// Makes sure the owner hears `deadlineReached` by `deadline` (its machine's; nil: no
    /// timer needed). A timer already due sooner is left alone, and the owner asks again
    /// when it fires, so most events touch no timer at all.
    func wake(by deadline: UInt64?) {
        guard let deadline, !isClosed, lingerTimer == nil else { return }
        if timer != nil && timerAt <= deadline { return }
        daemon.loop.cancel(&timer)
        timerAt = deadline
        timer = daemon.loop.schedule(at: deadline) { [weak self] in self?.timerFired() }
    }

    private func timerFired() {
        timer = nil
        timerAt = .max
        guard !isClosed, lingerTimer == nil else { return }
        owner?.deadlineReached(now: daemon.loop.now)
    }

    private func cancelTimer() {
        daemon.loop.cancel(&timer)
        timerAt = .max
    }

    // MARK: - closing

    /// Reads nothing more; once the output is out, closes lingering. With `deadline`, a
    /// client that has not taken it all by then is closed at once, without the rest.
    func closeAfterWriting(within deadline: UInt64? = nil) {
        guard !isClosed, lingerTimer == nil else { return }
        closeWhenWritten = true
        if let deadline, drainTimer == nil {
            drainTimer = daemon.loop.schedule(at: deadline) { [weak self] in
                self?.drainTimer = nil
                self?.closeNow()
            }
        }
        flushAtEndOfPass()
        updateInterest()
    }

    /// The write side is shut and what the client still sends is read and dropped until it
    /// closes, for up to `lingerNs` (nginx's lingering close), so that it reads the last
    /// answer instead of a reset: a client writing just after a refusal at the door does
    /// not fail with EPIPE before it has read why.
    private func lingerAndClose() {
        guard !isClosed, lingerTimer == nil else { return }
        owner?.lingerBegan()
        guard !isClosed else { return }
        cancelTimer()
        daemon.loop.cancel(&drainTimer)
        shutdown(fd, Int32(SHUT_WR))
        let loop = daemon.loop
        lingerTimer = loop.schedule(at: loop.now &+ Self.lingerNs) { [weak self] in self?.closeNow() }
        if let registration { loop.modify(registration, .readable) }
    }

    private func discardUntilEOF() {
        let (n, err) = SystemError.retrying {
            daemon.scratch.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        }
        if n == 0 || (n < 0 && err != EAGAIN && err != EWOULDBLOCK) { closeNow() }
    }

    /// Closes the descriptor at once; the owner ends whatever it still had in flight.
    func closeNow() {
        guard !isClosed else { return }
        isClosed = true
        daemon.loop.cancel(&lingerTimer)
        daemon.loop.cancel(&drainTimer)
        cancelTimer()
        if let registration { daemon.loop.unregister(registration) }
        registration = nil
        Glibc.close(fd)
        owner?.socketClosed()
    }
}
