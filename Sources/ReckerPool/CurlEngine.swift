import CReckerCurl
import Dispatch
import Glibc
import ReckerLoop
import ReckerProtocol
import ReckerSession
import Synchronization

/// The libcurl engine: one multi handle on one event loop, so every request to a domain
/// shares that domain's warm connections, whichever client or process sent it. The pool's
/// decisions come from `PoolStateMachine`; this type carries them out.
///
/// Thread confinement: everything but `inFlightCount` and the loop's inbox is touched only
/// on the loop's thread ("the engine thread"). Code on that thread calls the engine
/// directly; other threads' calls travel through `EventLoop.execute`. That split is why
/// the type is `@unchecked Sendable`.
package final class CurlEngine: @unchecked Sendable {
    /// The settings in force; replaced on reload (engine thread only).
    package private(set) var options: PoolOptions
    let multi: MultiHandle
    /// The loop libcurl's sockets and timer live on; the engine's own unless one was given.
    package let loop: EventLoop
    private let ownsLoop: Bool
    /// libcurl's sockets as the loop watches them, and libcurl's timer.
    var curlSockets: [Int32: EventLoop.Registration] = [:]
    /// Sockets libcurl no longer watches whose registration is kept (`watch`).
    var parkedSockets: Set<Int32> = []
    var curlTimer: EventLoop.TimerID?
    /// libcurl's timer requests, watched for a storm; whether libcurl is running its timeouts.
    var timerStorm = TimerStorm()
    var inCurlTimeout = false
    /// Engine calls nest (a sink's reaction to an answer may cancel another request): the
    /// commands that arrive while the engine is at work wait here for it to finish.
    private var depth = 0
    private var later: [Command] = []
    /// Transfers holding body bytes taken in the current call into libcurl.
    private var bodyPending: [Transfer] = []
    /// Whether anything happened since the pool's timers last ran, and when they must run
    /// next regardless.
    private var poolChanged = false
    private var poolTimer: (deadline: UInt64, id: EventLoop.TimerID)?
    private var lastTick: UInt64 = 0
    /// The pool's timers run at most this often (ns) while events keep coming.
    static let tickInterval: UInt64 = 1_000_000
    /// How much later than the engine's own total_timeout timer libcurl's backstop fires (ms).
    static let backstopSlackMs = 250
    private var cleanedUp = false
    /// Easy handles of finished transfers, reset, for the next ones (engine thread).
    private var spareHandles: [EasyHandle] = []
    static let maxSpareHandles = 256
    let nextTransfer = Atomic<UInt64>(1)
    private let inFlightCount = Atomic<Int>(0)
    private let stopped = Mutex<Bool>(false)
    private let exited = DispatchSemaphore(value: 0)
    /// The thread running a loop of the engine's own, joined at `shutdown`.
    private let ownThread = Mutex<EventLoop.Thread?>(nil)

    var pool: PoolStateMachine
    private var waiting: [TransferID: (EngineRequest, any TransferSink)] = [:]
    /// Request body that arrived while its request waited for a connection.
    private var waitingBody: [TransferID: [(chunk: [UInt8], end: Bool)]] = [:]
    private var transfers: [TransferID: Transfer] = [:]
    /// The loop timer of each request with a `total_timeout`, waiting or running: libcurl's
    /// own takes no account of the queue, and loses a deadline less than 40 ms away when a
    /// socket event comes first (7.88 treats timers that close as passed), so a 1 ms limit
    /// fired after 200 ms.
    private var totalTimers: [TransferID: EventLoop.TimerID] = [:]
    let dnsShares = DNSShares()
    /// Requests were in flight since the heap was last trimmed (`endOfPass`).
    private var busySinceTrim = false
    /// Responses done upstream whose spilled rest their clients are still reading, and the
    /// bytes in all spill files together.
    private var draining: [TransferID: Transfer] = [:]
    var spilledTotal = 0
    var spilledByUser: [ClientID: Int] = [:]
    /// Upstream connections' sockets by descriptor; each connection's open sockets, and the
    /// one it carries requests on; connections reckerd closed whose sockets libcurl still holds.
    var connections: [Int32: ConnectionRecord] = [:]
    var socketsOf: [ConnectionID: [Int32]] = [:]
    var connectionFDs: [ConnectionID: Int32] = [:]
    var retired: Set<ConnectionID> = []
    /// The transfer that makes libcurl let go of retired connections' descriptors
    /// (`schedulePrune`), its timer, and whether it is in the multi handle now.
    var pruneHandle: EasyHandle?
    var pruneTimer: EventLoop.TimerID?
    var pruning = false
    var retiredBeforePrune = 0
    /// String lists recker-direct's settings hand libcurl (ProcessOnlyOptions).
    var processLists: [UnsafeMutablePointer<curl_slist>?] = []
    /// When the connection records were last audited against their descriptors (and idle
    /// domains forgotten), and the time of the current loop pass.
    private var lastAudit: UInt64 = 0
    private var loopTime: UInt64 = 0
    private var lastShortageWarning: UInt64 = 0
    var counters: [String: DomainCounters] = [:]
    var totals = DomainCounters()
    var stopping = false
    /// Actions decided inside libcurl callbacks, where multi calls are not allowed; run
    /// after `perform` returns.
    var deferred: [PoolStateMachine.Action] = []
    /// A socket whose peer is closed: `dup2`'d over a connection we close, so libcurl's
    /// descriptor stays valid (and reads as closed) until libcurl lets go of it.
    let deadSocket: Int32

    enum Command: Sendable {
        case start(TransferID, EngineRequest, any TransferSink)
        case body(TransferID, [UInt8], end: Bool)
        case consumed(TransferID, Int)
        case cancel(TransferID)
        case failAll(ReckerError)
        case snapshot(@Sendable (PoolStats) -> Void)
        case reconfigure(PoolOptions)
        case stop
    }

    /// Called on every engine loop pass (at least once a second) with the requests in
    /// flight and the upstream connections open: a watchdog's proof that the loop turns.
    private let onLoop: (@Sendable (_ inFlight: Int, _ openConnections: Int) -> Void)?
    /// Where the engine reports what it corrected on its own (a stale record, a refused
    /// action); called on the engine thread.
    let warn: @Sendable (String) -> Void
    var openConnections = 0

    /// Starts the engine on `loop` (whose thread must then run it), or on a loop and thread
    /// of its own. Fails only when libcurl cannot make a multi handle or the system an epoll.
    package init(options: PoolOptions, loop given: EventLoop? = nil, warn: @escaping @Sendable (String) -> Void = { _ in },
                 onLoop: (@Sendable (_ inFlight: Int, _ openConnections: Int) -> Void)? = nil) throws {
        self.onLoop = onLoop
        self.warn = warn
        Self.globalInit
        guard let m = MultiHandle() else { throw ReckerError(.internalError, "curl_multi_init failed") }
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw ReckerError(.internalError, "socketpair failed")
        }
        close(pair[1])
        deadSocket = pair[0]
        self.options = options
        pool = PoolStateMachine(options: options)
        multi = m
        if let given {
            loop = given
            ownsLoop = false
        } else {
            loop = try EventLoop()
            ownsLoop = true
        }
        applyMultiOptions()
        installMultiCallbacks()
        let start: @Sendable () -> Void = { [weak self] in
            self?.loop.atEndOfEveryPass { [weak self] in self?.endOfPass() }
        }
        if loop.isCurrent { start() } else { loop.execute(start) }
        if ownsLoop {
            // The thread keeps the engine alive until its loop has stopped: work of the last
            // pass (timers, callbacks that reach the engine unowned) may run after cleanup,
            // and the process may be exiting meanwhile (recker-direct's last request).
            let thread = EventLoop.spawn(name: "reckerd-engine", joinable: true) { [self] in loop.run() }
            ownThread.withLock { $0 = thread }
        }
    }

    private func applyMultiOptions() {
        multi.set(CURLMOPT_MAXCONNECTS, options.maxCachedConnections)
        let most = ([options.agent] + options.domains.values).map(\.connections).max() ?? options.agent.connections
        if options.perDomainPooling {
            multi.set(CURLMOPT_MAX_HOST_CONNECTIONS, most)
        } else {
            multi.set(CURLMOPT_MAX_TOTAL_CONNECTIONS, options.agent.connections)
        }
        multi.set(CURLMOPT_PIPELINING, options.http2Enabled ? Int(CURLPIPE_MULTIPLEX) : 0)
        multi.set(CURLMOPT_MAX_CONCURRENT_STREAMS, options.http2MaxConcurrentStreams)
    }

    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        signal(SIGPIPE, SIG_IGN)
    }()

    // MARK: - the interface other threads use

    /// Starts a request; its results go to `sink`, maybe before this returns its id: a sink
    /// that looks its requests up by id wants `makeTransferID` and `start(_:_:sink:)`.
    package func start(_ request: EngineRequest, sink: any TransferSink) -> TransferID {
        let id = makeTransferID()
        start(id, request, sink: sink)
        return id
    }

    /// A fresh transfer id, for a caller that must know it before `start(_:_:sink:)` (on
    /// the engine thread, the sink may hear of the request before `start` returns).
    package func makeTransferID() -> TransferID { nextTransfer.wrappingAdd(1, ordering: .relaxed).oldValue }

    /// Carries out what a session asks for one of its requests; a start's results go to `sink`.
    package func perform(_ command: EngineCommand, sink: any TransferSink) {
        switch command {
        case .start(let id, let request): start(id, request, sink: sink)
        case .sendBody(let id, let data, let end): sendBody(id, data, end: end)
        case .consumed(let id, let n): consumed(id, bytes: n)
        case .cancel(let id): cancel(id)
        }
    }

    /// Starts a request under an id from `makeTransferID`; its results go to `sink`.
    package func start(_ id: TransferID, _ request: EngineRequest, sink: any TransferSink) {
        inFlightCount.wrappingAdd(1, ordering: .relaxed)
        post(.start(id, request, sink))
    }

    /// More request body from the client.
    package func sendBody(_ id: TransferID, _ chunk: [UInt8], end: Bool) { post(.body(id, chunk, end: end)) }

    /// The client has been sent `bytes` of this response, so the engine may read more.
    package func consumed(_ id: TransferID, bytes: Int) { post(.consumed(id, bytes)) }

    /// Stops a request; its sink gets `CANCELLED`.
    package func cancel(_ id: TransferID) { post(.cancel(id)) }

    /// Fails every request in flight with `error` (used when a drain runs out of time).
    package func failAll(_ error: ReckerError) { post(.failAll(error)) }

    /// Takes a consistent snapshot of the statistics on the engine thread.
    package func snapshot(_ done: @escaping @Sendable (PoolStats) -> Void) { post(.snapshot(done)) }

    /// A snapshot taken now; on the engine thread only.
    package func snapshotNow() -> PoolStats { takeSnapshot() }

    /// The snapshot, waited for (at most 5 s; an empty one if the engine is gone).
    package var stats: PoolStats {
        let box = Mutex<PoolStats?>(nil)
        let ready = DispatchSemaphore(value: 0)
        snapshot { s in
            box.withLock { $0 = s }
            ready.signal()
        }
        _ = ready.wait(timeout: .now() + 5)
        return box.withLock { $0 } ?? PoolStats()
    }

    /// New settings (a reload): unchanged domains keep their warm connections, changed ones
    /// drain and reopen. `perDomainPooling` must be unchanged.
    package func reconfigure(_ options: PoolOptions) { post(.reconfigure(options)) }

    /// Requests in flight now, queued ones included.
    package var inFlight: Int { inFlightCount.load(ordering: .relaxed) }

    /// Ends every transfer and closes every connection. From another thread it waits until
    /// that is done; on the loop's own thread it begins it (`isStopped` says when it is done).
    package func shutdown() {
        let first = stopped.withLock { s -> Bool in
            defer { s = true }
            return !s
        }
        guard first else { return }
        post(.stop)
        if !loop.isCurrent {
            exited.wait()
            ownThread.withLock { t in
                t?.join()
                t = nil
            }
        }
    }

    /// What the engine holds, for a warning about libcurl's own state.
    var holding: String {
        "\(transfers.count) transfers running, \(waiting.count) waiting, \(draining.count) draining, "
            + "\(openConnections) upstream connections open, \(retired.count) closed but not let go by libcurl, "
            + "prune transfer \(pruning ? "running" : "not running")"
    }

    /// True once `shutdown` has closed everything (engine thread).
    package var isStopped: Bool { cleanedUp }

    /// Runs `command` now when called on the engine thread (after the work under way, if
    /// any), or hands it to the loop from another thread.
    private func post(_ command: Command) {
        if loop.isCurrent {
            if depth > 0 {
                later.append(command)
            } else {
                engineWork { handle(command) }
            }
        } else {
            loop.execute { [self] in
                if depth > 0 { later.append(command) } else { engineWork { handle(command) } }
            }
        }
    }

    /// Does `body` (a call into libcurl or a command), then what it left: finished
    /// transfers, actions decided inside callbacks, commands that came in meanwhile.
    func engineWork(_ body: () -> Void) {
        loop.assertOnLoop()
        depth += 1
        body()
        if depth == 1 {
            var rounds = 0
            repeat {
                deliverTakenBodies()
                drainMessages()
                while !deferred.isEmpty {
                    let actions = deferred
                    deferred.removeAll()
                    execute(actions)
                }
                let commands = later
                later.removeAll()
                for c in commands { handle(c) }
                rounds += 1
            } while (!later.isEmpty || !deferred.isEmpty) && rounds < 1000
        }
        depth -= 1
        poolChanged = true
    }

    // MARK: - the engine thread

    /// libcurl's error text made safe to log and to send as a one-line message: nghttp2
    /// quotes a refused field's value (an upstream's cookie, or a line break that would
    /// forge a log line), which is cut; control bytes become `\xNN`.
    static func oneLine(_ text: String) -> String {
        var bytes = Array(text.utf8)
        let marker = Array(", value: [".utf8)
        if bytes.count >= marker.count,
           let at = (0 ... bytes.count - marker.count).first(where: { bytes[$0 ..< $0 + marker.count].elementsEqual(marker) }) {
            bytes = Array(bytes[..<at]) + Array(" (its value not shown)".utf8)
        }
        var out = ""
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + (hex.count < 2 ? "0" : "") + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Nanoseconds from `instant` to this loop pass's time: the engine's one clock is
    /// `loop.now`, read once per pass (a second reading later in the pass once made a pause
    /// look 584 years old, and its upload fail with a false body timeout). An instant taken
    /// on another thread may be later than the pass began: 0 then.
    func elapsed(since instant: UInt64) -> UInt64 {
        loop.now > instant ? loop.now - instant : 0
    }

    /// The engine's share of the end of each loop pass: the watchdog's beat, the janitor
    /// (once a second), the pool's timers when something changed or a deadline is due, and
    /// the end of a stop.
    private func endOfPass() {
        guard !cleanedUp else { return }
        onLoop?(inFlightCount.load(ordering: .relaxed), openConnections)
        let now = loop.now
        loopTime = now
        if now &- lastAudit >= 1_000_000_000 {
            lastAudit = now
            engineWork {
                auditConnections()
                forgetIdleDomains(now: now)
                endStalledUploads()
                dnsShares.sweep(unusedSince: now &- UInt64(options.dnsCacheTimeoutS) * 1_000_000_000)
            }
            // Once nothing is in flight after a busy spell, the heap's free pages go back to
            // the system: glibc keeps them otherwise, and a burst of large responses left
            // its peak as the daemon's RSS for good.
            if transfers.isEmpty && draining.isEmpty {
                if busySinceTrim {
                    busySinceTrim = false
                    recker_trim_heap()
                }
            } else {
                busySinceTrim = true
            }
        }
        let due = poolTimer.map { now >= $0.deadline } ?? false
        if poolChanged && !due && now &- lastTick < Self.tickInterval {
            // Busy: the timers run once per interval at most, not after every event (their
            // cost grows with the queue), and no later than that.
            if poolTimer == nil || poolTimer!.deadline > lastTick &+ Self.tickInterval {
                if let t = poolTimer { loop.cancel(t.id) }
                let at = lastTick &+ Self.tickInterval
                poolTimer = (at, loop.schedule(at: at) {})
            }
        } else if poolChanged || due {
            lastTick = now
            poolChanged = false
            var next: UInt64?
            engineWork {
                let tick = pool.tick(now: now)
                execute(tick.actions)
                next = tick.next
            }
            poolChanged = false
            if next != poolTimer?.deadline {
                if let t = poolTimer { loop.cancel(t.id) }
                poolTimer = next.map { ($0, loop.schedule(at: $0) {}) }
            }
        }
        if stopping && transfers.isEmpty && waiting.isEmpty && draining.isEmpty {
            cleanedUp = true
            loop.cancel(&curlTimer)
            if let t = poolTimer { loop.cancel(t.id) }
            for easy in spareHandles { easy.cleanup() }
            spareHandles = []
            for list in processLists { curl_slist_free_all(list) }
            processLists = []
            loop.cancel(&pruneTimer)
            if let h = pruneHandle {
                if pruning { curl_multi_remove_handle(multi.raw, h.raw) }
                h.cleanup()
            }
            curl_multi_cleanup(multi.raw)
            dnsShares.cleanupAll()
            for r in curlSockets.values { loop.unregister(r) }
            curlSockets = [:]
            parkedSockets = []
            close(deadSocket)
            exited.signal()
            if ownsLoop { loop.stop() }
        }
    }

    private func handle(_ command: Command) {
        switch command {
        case .start(let id, let request, let sink):
            if stopping {
                inFlightCount.wrappingAdd(-1, ordering: .relaxed)
                sink.transferFailed(id, ReckerError(.shuttingDown, "reckerd is stopping"))
                return
            }
            if request.head.options.insecure == true && request.target.https && !options.allowInsecure {
                inFlightCount.wrappingAdd(-1, ordering: .relaxed)
                sink.transferFailed(id, ReckerError(.destinationDenied, "this reckerd does not skip certificate checks (tls.allowInsecure is false in its config); nothing was sent"))
                return
            }
            count(request.target.domain) { $0.requestsTotal += 1 }
            waiting[id] = (request, sink)
            if let ms = request.head.options.totalTimeoutMs, ms > 0 {
                totalTimers[id] = loop.schedule(at: request.arrival &+ UInt64(ms) * 1_000_000) { [unowned self] in
                    engineWork { totalTimeoutPassed(id, ms: ms) }
                }
            }
            execute(pool.requestArrived(id, target: request.target, client: request.client, user: request.user,
                                        now: loop.now))
            if waiting[id] != nil { spillPausedResponses(toFree: request.target.domain) }
        case .body(let id, let chunk, let end):
            if let t = transfers[id] {
                receiveBody(t, chunk, end: end)
            } else if waiting[id] != nil {
                // Kept until the request starts; the client's window bounds it.
                waitingBody[id, default: []].append((chunk, end))
            }
        case .consumed(let id, let n):
            guard let t = transfers[id] ?? draining[id] else { return }
            t.outstanding -= n
            t.progress.lastRead = loop.now
            deliverSpilled(t)
            let spilled = t.spill?.pending ?? 0
            let room = spilled > 0 ? spilled <= options.maxSpillBytes / 2 : t.outstanding <= t.responseBuffer / 2
            if t.progress.recvPaused && !t.finished && room {
                t.progress.pauseReceiving(false, now: loop.now)
                curl_easy_pause(t.easy.raw, t.pauseMask)
            }
        case .cancel(let id):
            let error = { (method: String) in
                ReckerError(.cancelled, "request cancelled", mayHaveReachedUpstream: true,
                            retrySafe: RequestValidator.isSafeMethod(method))
            }
            if let t = transfers[id] {
                finish(t, error: error(t.request.head.method))
            } else if let t = draining.removeValue(forKey: id) {
                dropSpill(t)
                inFlightCount.wrappingAdd(-1, ordering: .relaxed)
                t.sink.transferFailed(id, error(t.request.head.method))
            } else if let (request, sink) = waiting[id] {
                // Still in the queue: it never left reckerd.
                failWaiting(id, request, sink, ReckerError(.cancelled, "request cancelled while it waited for a connection",
                                                           mayHaveReachedUpstream: false, retrySafe: true))
            }
        case .failAll(let error):
            failEverything(error)
        case .snapshot(let done):
            done(takeSnapshot())
        case .reconfigure(let new):
            options = new
            applyMultiOptions()
            execute(pool.reconfigure(new))
        case .stop:
            stopping = true
            failEverything(ReckerError(.shuttingDown, "reckerd is stopping", mayHaveReachedUpstream: true, retrySafe: false))
        }
    }

    /// Fails every request: those still queued never left reckerd; those running may have
    /// reached the upstream, and may be retried where their method allows (RFC 9110 §9.2.2).
    private func failEverything(_ error: ReckerError) {
        var queued = error
        queued.mayHaveReachedUpstream = false
        queued.retrySafe = true
        for (id, (request, sink)) in waiting { failWaiting(id, request, sink, queued) }
        for t in Array(transfers.values) {
            var running = error
            running.mayHaveReachedUpstream = true
            running.retrySafe = RequestValidator.isSafeMethod(t.request.head.method)
            finish(t, error: running)
        }
        for t in draining.values {
            dropSpill(t)
            inFlightCount.wrappingAdd(-1, ordering: .relaxed)
            t.sink.transferFailed(t.id, error)
        }
        draining = [:]
    }

    private func receiveBody(_ t: Transfer, _ chunk: [UInt8], end: Bool) {
        t.uploadReceived += UInt64(chunk.count)
        if let expected = t.request.head.bodyLength,
           t.uploadReceived > expected || (end && t.uploadReceived != expected) {
            // The head may have gone out already: the flags say so (PROTOCOL.md 2.3).
            finish(t, error: t.reachedError(.bodyLengthMismatch, "request body was \(t.uploadReceived)\(end ? "" : "+") bytes, head said \(expected)"))
            return
        }
        if !chunk.isEmpty { t.uploadQueue.append(chunk) }
        if end { t.uploadEnded = true }
        if t.progress.sendPaused {
            t.progress.pauseSending(false, now: loop.now)
            curl_easy_pause(t.easy.raw, t.pauseMask)
        }
    }

    /// A transfer took body bytes in this call into libcurl; they go to its sink when the
    /// call returns (`deliverTakenBodies`).
    func bodyTaken(_ t: Transfer) { bodyPending.append(t) }

    private func deliverTakenBodies() {
        guard !bodyPending.isEmpty else { return }
        let taken = bodyPending
        bodyPending.removeAll(keepingCapacity: true)
        for t in taken { t.deliverBody() }
    }

    /// Carries out what the pool decided.
    func execute(_ actions: [PoolStateMachine.Action]) {
        for action in actions {
            switch action {
            case .start(let id):
                guard let (request, sink) = waiting[id] else { continue }
                // A client that has gone is not served, even before its cancel arrives.
                guard !sink.isGone else {
                    failWaiting(id, request, sink, ReckerError(.cancelled, "the client has gone"))
                    continue
                }
                begin(id, request, sink)
            case .fail(let id, let code):
                guard let (request, sink) = waiting[id] else { continue }
                let message = code == .queueFull
                    ? "the queue for \(request.target.domain) is full"
                    : "waited longer than the queue timeout for a connection to \(request.target.domain)"
                failWaiting(id, request, sink, ReckerError(code, message), endInPool: false)
            case .close(let id):
                closeConnection(id)
            case .warm(let target):
                warmUp(target)
            }
        }
    }

    /// A request's `total_timeout` is up: it fails with TIMEOUT, waiting or running.
    private func totalTimeoutPassed(_ id: TransferID, ms: UInt32) {
        totalTimers[id] = nil
        if let t = transfers[id] {
            finish(t, error: t.reachedError(.timeout, "the request took longer than its total_timeout of \(ms) ms"))
        } else if let (request, sink) = waiting[id] {
            failWaiting(id, request, sink, ReckerError(.timeout, "the request waited for a connection longer than its total_timeout of \(ms) ms",
                                                       mayHaveReachedUpstream: false, retrySafe: true))
        }
    }

    /// Whether a running transfer is on connection `id`.
    func isCarrying(_ id: ConnectionID) -> Bool { transfers.values.contains { $0.connection == id } }

    private func stopTotalTimer(_ id: TransferID) {
        if let timer = totalTimers.removeValue(forKey: id) { loop.cancel(timer) }
    }

    /// Answers a request that never reached libcurl.
    private func failWaiting(_ id: TransferID, _ request: EngineRequest, _ sink: any TransferSink, _ error: ReckerError,
                             endInPool: Bool = true) {
        stopTotalTimer(id)
        waiting[id] = nil
        waitingBody[id] = nil
        count(request.target.domain) { s in
            guard error.code != .cancelled else { return }
            s.errorsTotal += 1
            switch error.code {
            case .connectFailed, .connectTimeout, .dnsFailed, .tlsFailed: s.connectFailures += 1
            default: break
            }
            if [.queueTimeout, .timeout, .connectTimeout].contains(error.code) { s.timeouts += 1 }
        }
        if endInPool { execute(pool.requestEnded(id)) }
        inFlightCount.wrappingAdd(-1, ordering: .relaxed)
        sink.transferFailed(id, error)
    }

    /// Hands a request to libcurl; `over` is the transfer it starts over, on a fresh
    /// connection, taking over its body.
    func begin(_ id: TransferID, _ request: EngineRequest, _ sink: any TransferSink, warmUp: Bool = false,
               over old: Transfer? = nil) {
        waiting[id] = nil
        guard let easy = spareHandles.popLast() ?? EasyHandle() else {
            failWaiting(id, request, sink, ReckerError(.internalError, "curl_easy_init failed"))
            return
        }
        let t = Transfer(id: id, request: request, sink: sink, easy: easy, engine: self)
        t.isWarmUp = warmUp
        if let old {
            t.sentBefore = old.sent || old.sentBefore
            t.carryBody(from: old)
            t.restarts = old.restarts + 1
            t.freshConnection = true
        }
        configure(t)
        dnsShares.attach(easy, domain: request.target.domain, now: loop.now)
        transfers[id] = t
        t.startedAt = loop.now
        t.progress.lastActivity = loop.now
        let queued = elapsed(since: request.arrival) / 1000
        record(request.target.domain) { $0.queueTime.record(queued) }
        let rc = curl_multi_add_handle(multi.raw, easy.raw)
        if rc != CURLM_OK {
            waitingBody[id] = nil
            finish(t, error: ReckerError(.internalError, "curl_multi_add_handle: \(String(cString: curl_multi_strerror(rc)))"))
            return
        }
        for (chunk, end) in waitingBody.removeValue(forKey: id) ?? [] where !t.finished { receiveBody(t, chunk, end: end) }
    }

    private func drainMessages() {
        var left: Int32 = 0
        while let msg = curl_multi_info_read(multi.raw, &left) {
            guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle else { continue }
            var raw: UnsafeMutableRawPointer?
            _ = recker_easy_getinfo_pointer(easy, CURLINFO_PRIVATE, &raw)
            guard let raw else {
                if easy == pruneHandle?.raw { pruned() }
                continue
            }
            let t = Unmanaged<Transfer>.fromOpaque(raw).takeUnretainedValue()
            switch TransferPolicy.verdict(outcome(of: t, recker_msg_result(msg))) {
            case .succeeded:
                finish(t, error: nil)
            case .startOver:
                startOver(t)
            case .failed(let error, let note):
                switch note {
                case .retry: count(t.request.target.domain) { $0.retries += 1 }
                case .localShortage(let reason): reportLocalShortage(reason)
                case nil: break
                }
                finish(t, error: error)
            }
        }
    }

    /// The facts `TransferPolicy` decides a finished transfer's end from, read from its
    /// record and its easy handle (the effective URL and the status only when they matter).
    private func outcome(of t: Transfer, _ result: CURLcode) -> TransferPolicy.Outcome {
        var o = TransferPolicy.Outcome(result: result, head: t.request.head)
        o.hasBody = t.request.hasBody
        o.replayable = t.replayable
        o.isWarmUp = t.isWarmUp
        o.headOnlyAnswered = t.headOnlyAnswered
        o.restartFresh = t.restartFresh
        o.sawResponse = t.sawResponse
        if t.sawResponse { o.headComplete = t.responseHead.complete }
        o.headSent = t.headSent
        if result == CURLE_OK { o.interimAsFinal = t.interimAsFinal }
        o.deniedDestination = t.deniedDestination
        o.socketError = t.socketError
        if result == CURLE_UNSUPPORTED_PROTOCOL {
            o.effectiveURLIsHTTP = t.easy.string(CURLINFO_EFFECTIVE_URL)?.lowercased().hasPrefix("http") == true
        }
        if result == CURLE_SEND_FAIL_REWIND { o.status = t.easy.long(CURLINFO_RESPONSE_CODE) }
        o.responseBuffer = t.responseBuffer
        o.redirectRefused = t.redirectRefused
        o.headRefused = t.headRefused
        o.resendRefused = t.resendRefused
        o.neverProcessed = t.neverProcessed
        o.resentAfterHTTP2 = t.resentAfterHTTP2
        o.connected = t.connection != nil
        if result != CURLE_OK { o.errorText = Self.oneLine(String(decoding: t.errorBuffer.prefix { $0 != 0 }, as: UTF8.self)) }
        o.totalTimeoutMs = t.request.head.options.totalTimeoutMs
        o.elapsed = elapsed(since: t.request.arrival)
        o.restarts = t.restarts
        o.startedOnReuse = t.startedOnReuse
        return o
    }

    /// Ends a transfer exactly once: counts it, tells its sink, frees its handle, and lets
    /// the pool start what waited for it.
    private func finish(_ t: Transfer, error failure: ReckerError?) {
        guard !t.finished else { return }
        t.finished = true
        let error = TransferPolicy.reached(failure, sentBefore: t.sent || t.sentBefore, neverProcessed: t.neverProcessed, head: t.request.head)
        // Read before the handle is reset: plain http is HTTP/1 here; https says so once a
        // status line came.
        let version = t.easy.long(CURLINFO_HTTP_VERSION)
        let spokeHTTP1 = !t.request.target.https || version == Int(CURL_HTTP_VERSION_1_1) || version == Int(CURL_HTTP_VERSION_1_0)
        stopTotalTimer(t.id)
        transfers[t.id] = nil
        waiting[t.id] = nil
        if error == nil { t.sendHeadIfNeeded() }
        t.deliverBody()
        let domain = t.request.target.domain
        let total = UInt32(clamping: elapsed(since: t.request.arrival) / 1000)
        // Counted before the sink hears of it, so stats never lag an answer a client saw.
        count(domain) { s in
            s.bytesOut += Int(t.uploadReceived)
            // A request its client cancelled is not the upstream's error.
            guard let error, error.code != .cancelled else { return }
            s.errorsTotal += 1
            switch error.code {
            case .connectFailed, .connectTimeout, .dnsFailed, .tlsFailed: s.connectFailures += 1
            default: break
            }
            if error.code == .timeout || error.code == .connectTimeout { s.timeouts += 1 }
        }
        if error == nil { record(domain) { $0.latency.record(UInt64(total)) } }
        if let error, [.dnsFailed, .connectTimeout].contains(error.code) {
            for id in pool.connectTimedOut(t.id) {
                guard let (request, sink) = waiting[id] else { continue }
                var shared = error
                shared.message = "waited for a connection to \(request.target.domain) that could not be opened: \(error.message)"
                failWaiting(id, request, sink, shared, endInPool: false)
            }
        }
        curl_multi_remove_handle(multi.raw, t.easy.raw)
        forgetSocketsClosedSilently(by: t)
        recycle(t)
        if let list = t.headerList { curl_slist_free_all(list) }
        let now = loop.now
        if let c = t.connection { execute(pool.connectionReleased(c, now: now)) }
        // An HTTP/1 connection whose answer broke the protocol is not trusted with another
        // request, whatever libcurl would do with it (README, "An upstream that lies").
        if error?.code == .upstreamProtocol && spokeHTTP1, let c = t.connection, !isCarrying(c) {
            closeConnection(c)
        }
        if t.isWarmUp { pool.warmUpEnded(domain: domain, succeeded: error == nil, now: now) }
        if !t.isWarmUp {
            let end = ResponseEnd(totalMicros: total, bodyBytes: t.bodyBytes)
            if error == nil, (t.spill?.pending ?? 0) > 0 {
                // The connection is free; the client reads the rest from the spill file.
                t.pendingEnd = end
                draining[t.id] = t
            } else {
                dropSpill(t)
                inFlightCount.wrappingAdd(-1, ordering: .relaxed)
                if let error { t.sink.transferFailed(t.id, error) } else { t.sink.transferEnd(t.id, end) }
            }
        }
        execute(pool.requestEnded(t.id))
    }

    /// Keeps a finished transfer's easy handle for the next request, reset to libcurl's
    /// defaults (`curl_easy_reset`: no option, header, method, credential or callback of
    /// this request survives; reckerd never turns on libcurl's cookie engine, so there are
    /// no cookies to keep), or frees it once enough are kept.
    private func recycle(_ t: Transfer) {
        let easy = t.easy
        dnsShares.detach(easy, domain: t.request.target.domain)
        guard spareHandles.count < Self.maxSpareHandles, !stopping else { return easy.cleanup() }
        curl_easy_reset(easy.raw)
        spareHandles.append(easy)
    }

    /// Ends the transfers that stood still too long (`TransferPolicy.stall`): a client that
    /// sends no body or reads none of its response for `bodyTimeoutMs`, one that reads nothing
    /// while others wait for its connection, an upstream that moves nothing for readTimeout.
    private func endStalledUploads() {
        let now = loop.now
        for t in Array(transfers.values) where !t.finished {
            let target = t.request.target
            let readTimeout = options.agent(forDomain: target.domain, host: target.host).readTimeoutMs
            if let error = TransferPolicy.stall(t.progress, now: now, bodyTimeoutMs: options.bodyTimeoutMs, readTimeoutMs: readTimeout,
                                                othersWait: { pool.queued(domain: target.domain) > 0 }) {
                finish(t, error: error)
            }
        }
    }

    // MARK: - starting a request over (engine thread)

    /// Lets go of `t`'s handle and connection and starts the same request again on a fresh
    /// connection; the client hears nothing of the first try, the pool counts a retry.
    private func startOver(_ t: Transfer) {
        t.finished = true
        curl_multi_remove_handle(multi.raw, t.easy.raw)
        forgetSocketsClosedSilently(by: t)
        recycle(t)
        if let list = t.headerList { curl_slist_free_all(list) }
        if let c = t.connection { execute(pool.connectionReleased(c, now: loop.now)) }
        // A resend libcurl began was counted when it began.
        if !t.restartFresh { count(t.request.target.domain) { $0.retries += 1 } }
        transfers[t.id] = nil
        begin(t.id, t.request, t.sink, over: t)
    }

    // MARK: - spilling slow readers' responses (engine thread)

    /// Takes response bytes `t`'s client is not ready for into its spill file, so its
    /// upstream connection can be freed for requests waiting in the pool. Starts only when
    /// someone waits; false (pause instead) then, when spilling is off, or when the file
    /// would pass `maxSpillBytes`.
    func spill(_ t: Transfer, _ data: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !t.isWarmUp else { return false }
        let spilled = t.spill?.pending ?? 0
        if spilled == 0 && pool.queued(domain: t.request.target.domain) == 0 { return false }
        let user = spilledByUser[t.spillOwner] ?? 0
        t.progress.spillRefused = options.maxSpillBytes == 0 ? "spilling is off (limits.spillMax 0)"
            : spilled + data.count > options.maxSpillBytes ? "its spill file is full (limits.spillMax, \(options.maxSpillBytes) bytes)"
            : user + data.count > options.maxSpillUserBytes ? "this user's spill files are full (limits.spillUserMax, \(options.maxSpillUserBytes) bytes)"
            : spilledTotal + data.count > options.maxSpillTotalBytes ? "all spill files are full (limits.spillTotalMax, \(options.maxSpillTotalBytes) bytes)"
            : nil
        guard t.progress.spillRefused == nil else { return false }
        if t.spill == nil {
            guard let file = SpillFile(directory: options.spillDirectory) else {
                warn("cannot spill a response to \(options.spillDirectory): \(String(cString: strerror(errno))); its connection stays held")
                return false
            }
            t.spill = file
        }
        guard t.spill!.append(data) else {
            // ENOSPC (a full /tmp) or EIO: said, at most once every 10 s, and the response
            // waits on its client instead.
            reportLocalShortage("writing the spill file in \(options.spillDirectory): \(String(cString: strerror(errno)))",
                                fix: "free space there or set limits.spillDirectory")
            return false
        }
        spilledTotal += data.count
        spilledByUser[t.spillOwner, default: 0] += data.count
        t.bodyBytes += UInt64(data.count)
        count(t.request.target.domain) { $0.bytesIn += data.count }
        return true
    }

    /// Forgets what `t` still had in its spill file (it will never be read).
    private func dropSpill(_ t: Transfer) {
        unspilled(t, t.spill?.pending ?? 0)
        t.spill = nil
    }

    /// `n` bytes left `t`'s spill file (read by the client, or dropped).
    private func unspilled(_ t: Transfer, _ n: Int) {
        spilledTotal -= n
        let left = (spilledByUser[t.spillOwner] ?? 0) - n
        spilledByUser[t.spillOwner] = left > 0 ? left : nil
    }

    /// A request was queued: responses paused for slow readers in the same pool resume into
    /// their spill files, which frees their connections when they end.
    private func spillPausedResponses(toFree domain: String) {
        guard options.maxSpillBytes > 0 else { return }
        let key = options.poolKey(forDomain: domain)
        for t in transfers.values where t.progress.recvPaused && !t.isWarmUp && options.poolKey(forDomain: t.request.target.domain) == key {
            t.progress.pauseReceiving(false, now: loop.now)
            curl_easy_pause(t.easy.raw, t.pauseMask)
        }
    }

    /// Hands the client what it has room for from the spill file; once all is read, the end
    /// of a response done upstream.
    private func deliverSpilled(_ t: Transfer) {
        guard let file = t.spill else { return }
        while t.outstanding < t.responseBuffer, file.pending > 0 {
            guard let chunk = file.read(max: min(64 * 1024, t.responseBuffer - t.outstanding)) else {
                let e = ReckerError(.internalError, "reading the spilled response failed: \(String(cString: strerror(errno)))")
                dropSpill(t)
                if t.finished {
                    draining[t.id] = nil
                    inFlightCount.wrappingAdd(-1, ordering: .relaxed)
                    t.sink.transferFailed(t.id, e)
                } else {
                    finish(t, error: e)
                }
                return
            }
            t.outstanding += chunk.count
            unspilled(t, chunk.count)
            t.sink.transferBody(t.id, chunk)
        }
        if file.pending == 0, let end = t.pendingEnd, draining.removeValue(forKey: t.id) != nil {
            inFlightCount.wrappingAdd(-1, ordering: .relaxed)
            t.sink.transferEnd(t.id, end)
        }
    }

    // MARK: - statistics (engine thread)

    func count(_ domain: String, _ change: (inout DomainStats) -> Void) {
        change(&totals.stats)
        let key = statsKey(domain)
        change(&counters[key, default: DomainCounters()].stats)
        counters[key]!.lastUsed = loopTime
    }

    func record(_ domain: String, _ change: (inout DomainCounters) -> Void) {
        change(&totals)
        let key = statsKey(domain)
        change(&counters[key, default: DomainCounters()])
        counters[key]!.lastUsed = loopTime
    }

    /// The domain's own statistics entry, or `other` once `maxTrackedDomains` are tracked.
    private func statsKey(_ domain: String) -> String {
        counters[domain] != nil || counters.count < options.maxTrackedDomains ? domain : otherDomains
    }

    /// Says, at most once every 10 s, that requests fail for want of descriptors or memory.
    private func reportLocalShortage(_ reason: String, fix: String? = nil) {
        guard lastShortageWarning == 0 || loopTime &- lastShortageWarning >= 10_000_000_000 else { return }
        lastShortageWarning = loopTime
        if let fix {
            warn("\(reason); \(fix)")
        } else {
            warn("requests fail with LOCAL_RESOURCES: socket(): \(reason); raise LimitNOFILE or ulimit -n")
        }
    }

    /// Drops the pools and statistics of domains idle past `forgetIdleDomainsMs` with
    /// nothing open, running, queued or kept warm (janitor, once a second).
    private func forgetIdleDomains(now: UInt64) {
        let cutoff = now &- UInt64(options.forgetIdleDomainsMs) * 1_000_000
        guard now > UInt64(options.forgetIdleDomainsMs) * 1_000_000 else { return }
        var active = pool.activeDomains()
        for t in transfers.values { active.insert(t.request.target.domain) }
        for (request, _) in waiting.values { active.insert(request.target.domain) }
        if active.contains(where: { counters[$0] == nil }) { active.insert(otherDomains) }
        for (domain, c) in counters where c.lastUsed < cutoff && !active.contains(domain) {
            counters[domain] = nil
        }
        pool.forgetPools(unusedSince: cutoff, except: active)
    }

    private func takeSnapshot() -> PoolStats {
        auditConnections()
        var running: [String: Int] = [:]
        for t in transfers.values where !t.isWarmUp { running[t.request.target.domain, default: 0] += 1 }
        var queued: [String: Int] = [:]
        for (request, _) in waiting.values { queued[request.target.domain, default: 0] += 1 }
        let open = pool.connectionStates()
        func fill(_ c: inout DomainCounters, running: Int, queued: Int, idle: Int, busy: Int) -> DomainStats {
            var s = c.stats
            s.requestsInFlight = running
            s.requestsQueued = queued
            s.connectionsIdle = idle
            s.connectionsBusy = busy
            s.connectionsOpen = idle + busy
            s.latency = c.latency.quantiles()
            s.queueTime = c.queueTime.quantiles()
            return s
        }
        var snap = PoolStats()
        snap.domains.reserveCapacity(counters.count)
        for index in counters.indices {
            let domain = counters.keys[index]
            let o = open[domain] ?? (0, 0)
            snap.domains[domain] = fill(&counters.values[index], running: running[domain] ?? 0, queued: queued[domain] ?? 0,
                                        idle: o.idle, busy: o.busy)
        }
        snap.total = fill(&totals, running: running.values.reduce(0, +), queued: queued.values.reduce(0, +),
                          idle: open.values.map(\.idle).reduce(0, +), busy: open.values.map(\.busy).reduce(0, +))
        return snap
    }
}
