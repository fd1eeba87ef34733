import CReckerLoop
import Glibc
import Synchronization

/// One thread's event loop: epoll over descriptors, timers on the monotonic clock, jobs
/// handed in from other threads, and work that waits for the end of a pass (so that, for
/// example, everything a pass wrote to a client goes out in one system call).
///
/// Thread confinement: everything but `execute` and `stop` is called on the loop's own
/// thread (the one inside `run`); `inbox` carries the rest. That is why the type is
/// `@unchecked Sendable`.
package final class EventLoop: @unchecked Sendable {
    /// Readiness bits, as epoll reports them.
    package struct Events: OptionSet, Sendable {
        package let rawValue: UInt32
        package init(rawValue: UInt32) { self.rawValue = rawValue }
        package static let readable = Events(rawValue: UInt32(RECKER_EPOLLIN))
        package static let writable = Events(rawValue: UInt32(RECKER_EPOLLOUT))
        package static let error = Events(rawValue: UInt32(RECKER_EPOLLERR))
        package static let hangup = Events(rawValue: UInt32(RECKER_EPOLLHUP))
        package static let readHangup = Events(rawValue: UInt32(RECKER_EPOLLRDHUP))
    }

    /// A descriptor's place in the loop: the token tells a registration from a later one
    /// of the same number, so a late `unregister` cannot remove a newer owner's.
    package struct Registration: Equatable, Sendable {
        package let fd: Int32
        let token: UInt64
    }

    /// A scheduled timer, for `cancel`.
    package struct TimerID: Hashable, Sendable {
        let value: UInt64
    }

    private struct Handler {
        let token: UInt64
        var interest: Events
        let ready: (Events) -> Void
    }

    private let epfd: Int32
    private let wakeFD: Int32
    private var handlers: [Int32: Handler] = [:]
    private var nextToken: UInt64 = 1
    private var timers = TimerHeap()
    private var timerActions: [UInt64: () -> Void] = [:]
    private var passEnd: [() -> Void] = []
    private var soon: [() -> Void] = []
    private var nextPassWork: [() -> Void] = []
    private let inbox = Mutex<(jobs: [@Sendable () -> Void], stopping: Bool)>(([], false))
    /// The thread inside `run` while one is (`pthread_t` is an integer here), else 0.
    private let owner = Atomic<UInt>(0)
    private var events = [recker_event](repeating: recker_event(), count: 256)
    /// The monotonic time (ns) at the start of the current pass: one clock read per pass.
    package private(set) var now: UInt64
    /// Passes made so far, each a wake-up (stats' `loop_wakeups`: a spin shows as a count
    /// that climbs with nothing to do).
    package private(set) var passes: UInt64 = 0
    /// Where the loop reads the time: `MonotonicClock`, or a test's `ManualClock`.
    private let clock: @Sendable () -> UInt64

    /// Fails only when the system refuses an epoll instance or an eventfd.
    package init(clock: @escaping @Sendable () -> UInt64 = MonotonicClock.nanoseconds) throws(SystemError) {
        self.clock = clock
        now = clock()
        epfd = try SystemError.check("epoll_create1") { recker_epoll_create() }
        do {
            wakeFD = try SystemError.check("eventfd") { recker_eventfd() }
        } catch {
            close(epfd)
            throw error
        }
        _ = recker_epoll_ctl(epfd, 1, wakeFD, Events.readable.rawValue)
    }

    deinit {
        close(wakeFD)
        close(epfd)
    }

    // MARK: - descriptors (loop thread)

    /// Watches `fd` for `interest`; `ready` runs on the loop with what happened. A number
    /// already registered (its old owner closed it without saying so) is taken over.
    @discardableResult
    package func register(_ fd: Int32, _ interest: Events, _ ready: @escaping (Events) -> Void) throws(SystemError) -> Registration {
        assertOnLoop()
        let token = nextToken
        nextToken += 1
        if recker_epoll_ctl(epfd, 1, fd, interest.rawValue) != 0 {
            guard errno == EEXIST else { throw SystemError("epoll_ctl(ADD, \(fd))", errno) }
            try SystemError.check("epoll_ctl(MOD, \(fd))") { recker_epoll_ctl(epfd, 3, fd, interest.rawValue) }
        }
        handlers[fd] = Handler(token: token, interest: interest, ready: ready)
        return Registration(fd: fd, token: token)
    }

    /// Changes what `registration` waits for. A descriptor whose open file changed under the
    /// same number (closed and reopened, or `dup2`'d over) is added afresh.
    package func modify(_ registration: Registration, _ interest: Events) {
        assertOnLoop()
        guard var h = handlers[registration.fd], h.token == registration.token else { return }
        guard h.interest != interest else { return }
        h.interest = interest
        handlers[registration.fd] = h
        if recker_epoll_ctl(epfd, 3, registration.fd, interest.rawValue) != 0 && errno == ENOENT {
            _ = recker_epoll_ctl(epfd, 1, registration.fd, interest.rawValue)
        }
    }

    /// Stops watching; a no-op when the number has a newer owner. Call before `close`.
    package func unregister(_ registration: Registration) {
        assertOnLoop()
        guard let h = handlers[registration.fd], h.token == registration.token else { return }
        handlers[registration.fd] = nil
        _ = recker_epoll_ctl(epfd, 2, registration.fd, 0)
    }

    /// Tells epoll again what `registration` waits for: after `dup2` put another open file
    /// under the same number, the old file's registration went with it.
    package func refresh(_ registration: Registration) {
        assertOnLoop()
        guard let h = handlers[registration.fd], h.token == registration.token else { return }
        if recker_epoll_ctl(epfd, 3, registration.fd, h.interest.rawValue) != 0 && errno == ENOENT {
            _ = recker_epoll_ctl(epfd, 1, registration.fd, h.interest.rawValue)
        }
    }

    /// Whether `registration` still holds its descriptor.
    package func isRegistered(_ registration: Registration) -> Bool {
        handlers[registration.fd]?.token == registration.token
    }

    // MARK: - timers (loop thread)

    /// Runs `action` on the loop once `deadline` (the loop clock's ns) has passed.
    @discardableResult
    package func schedule(at deadline: UInt64, _ action: @escaping () -> Void) -> TimerID {
        assertOnLoop()
        let id = nextToken
        nextToken += 1
        timers.push(deadline: deadline, id: id)
        timerActions[id] = action
        return TimerID(value: id)
    }

    package func cancel(_ timer: TimerID) {
        assertOnLoop()
        timerActions[timer.value] = nil
    }

    /// Cancels the timer `timer` holds, if any, and empties it: the one step every owner of
    /// an optional timer takes.
    package func cancel(_ timer: inout TimerID?) {
        if let t = timer { cancel(t) }
        timer = nil
    }

    // MARK: - work for later in this pass (loop thread)

    /// `work` runs at the end of every pass, before the loop waits: where buffered writes go
    /// out and deferred decisions are carried out.
    package func atEndOfEveryPass(_ work: @escaping () -> Void) {
        assertOnLoop()
        passEnd.append(work)
    }

    /// `work` runs once, at the end of this pass (or the next, if called from the end).
    package func soon(_ work: @escaping () -> Void) {
        assertOnLoop()
        soon.append(work)
    }

    /// `work` runs once in the next pass, after the descriptors ready then: how a connection
    /// with more to do than its turn allows lets every other one have its turn first.
    package func nextPass(_ work: @escaping () -> Void) {
        assertOnLoop()
        nextPassWork.append(work)
    }

    // MARK: - any thread

    /// Runs `job` on the loop thread; callable from any thread.
    package func execute(_ job: @escaping @Sendable () -> Void) {
        let wasEmpty = inbox.withLock { box -> Bool in
            box.jobs.append(job)
            return box.jobs.count == 1
        }
        if wasEmpty { wake() }
    }

    /// Whether the caller is the loop's own thread.
    package var isCurrent: Bool {
        owner.load(ordering: .acquiring) == UInt(pthread_self())
    }

    /// Stops a debug build when loop-confined code is called from a thread other than the
    /// loop's while it runs (before it runs, and after, the one thread setting it up or
    /// tearing it down may): every entry point of such code says so (swift-nio's
    /// `assertInEventLoop`). Release builds check nothing.
    package func assertOnLoop(file: StaticString = #file, line: UInt = #line) {
        assert({
            let running = owner.load(ordering: .acquiring)
            return running == 0 || running == UInt(pthread_self())
        }(), "loop-confined code called off the loop's thread", file: file, line: line)
    }

    /// Makes `run` return after the pass under way; callable from any thread.
    package func stop() {
        inbox.withLock { $0.stopping = true }
        wake()
    }

    private func wake() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(wakeFD, $0.baseAddress, 8) }
    }

    // MARK: - the loop

    /// Turns the loop on the calling thread until `stop`.
    package func run() {
        owner.store(UInt(pthread_self()), ordering: .releasing)
        defer { owner.store(0, ordering: .releasing) }
        while pass(wait: true) {}
    }

    /// One pass on the calling thread without waiting: what is ready now, due timers (by
    /// the loop's clock: a `ManualClock` makes time a test's to move), work handed in, the
    /// end of the pass. A test's way to turn a loop it owns; false once it was stopped.
    @discardableResult
    package func turn() -> Bool {
        assertOnLoop()
        return pass(wait: false)
    }

    /// One pass: the end of the last one, the wait (until the next timer with `wait`, else
    /// none), the descriptors ready, the jobs handed in, the timers due, the work carried
    /// over. False when `stop` was asked.
    private func pass(wait: Bool) -> Bool {
        endPass()
        passes &+= 1
        let carried = nextPassWork
        nextPassWork.removeAll(keepingCapacity: true)
        let timeout = carried.isEmpty && wait ? waitTimeout() : 0
        let n = events.withUnsafeMutableBufferPointer { recker_epoll_wait(epfd, $0.baseAddress, Int32($0.count), timeout) }
        now = clock()
        if n < 0 && errno != EINTR {
            // Only a broken epoll descriptor fails here; nothing could be waited on.
            fatalError("epoll_wait: \(String(cString: strerror(errno)))")
        }
        var woken = false
        for i in 0 ..< max(0, Int(n)) {
            let e = events[i]
            if e.fd == wakeFD {
                woken = true
                continue
            }
            handlers[e.fd]?.ready(Events(rawValue: e.events))
        }
        if woken {
            var count: UInt64 = 0
            _ = withUnsafeMutableBytes(of: &count) { read(wakeFD, $0.baseAddress, 8) }
        }
        let (jobs, stopping) = inbox.withLock { box -> ([@Sendable () -> Void], Bool) in
            defer { box.jobs.removeAll(keepingCapacity: true) }
            return (box.jobs, box.stopping)
        }
        for job in jobs { job() }
        runDueTimers()
        for work in carried { work() }
        if stopping {
            endPass()
            return false
        }
        return true
    }

    private func endPass() {
        var rounds = 0
        repeat {
            let work = soon
            soon.removeAll(keepingCapacity: true)
            for w in work { w() }
            for w in passEnd { w() }
            rounds += 1
        } while !soon.isEmpty && rounds < 4
    }

    /// Runs the timers due by this pass's time. A timer set meanwhile (by one of them) waits
    /// for the next pass even if it is due already, so a pass always ends: libcurl asking
    /// for a timeout of 0 on every call (seen with no upstream connection left, a daemon
    /// spinning here with a client's frames and its SIGTERM unread) costs a pass each time,
    /// with descriptors and signals in between, not the whole loop (EventLoopTests).
    private func runDueTimers() {
        let setBefore = nextToken
        while let top = timers.peek(), top.deadline <= now, top.id < setBefore {
            timers.pop()
            if let action = timerActions.removeValue(forKey: top.id) { action() }
        }
        // Cancelled timers are dropped from the heap once they would fire; while many are
        // cancelled and none fires (a flood of short-lived connections), compact it.
        if timers.count > 64 && timers.count > 2 * timerActions.count {
            timers.removeAll { timerActions[$0] == nil }
        }
    }

    /// Milliseconds to wait: 0 with work pending, until the next live timer, else 1 s (so
    /// the end-of-pass work, the watchdog among it, runs at least once a second).
    private func waitTimeout() -> Int32 {
        if !soon.isEmpty { return 0 }
        let current = clock()
        while let top = timers.peek(), timerActions[top.id] == nil { timers.pop() }
        guard let top = timers.peek() else { return 1000 }
        if top.deadline <= current { return 0 }
        return Int32(min(1000, (top.deadline - current + 999_999) / 1_000_000))
    }
}

extension EventLoop {
    /// A thread started by `spawn`, to wait for with `join`.
    package struct Thread: @unchecked Sendable {
        fileprivate let id: pthread_t

        /// Waits until the thread has ended, its thread-local destructors included (OpenSSL
        /// frees its per-thread state there: a process that exits meanwhile frees the same
        /// memory from its exit handlers). Once per thread.
        package func join() { pthread_join(id, nil) }
    }

    /// Runs `body` on a new thread named `name` (at most 15 bytes show in /proc). Unless
    /// `joinable`, nobody waits for its end.
    @discardableResult
    package static func spawn(name: String, joinable: Bool = false, _ body: @escaping @Sendable () -> Void) -> Thread {
        final class Box: Sendable {
            let name: String
            let body: @Sendable () -> Void
            init(_ name: String, _ body: @escaping @Sendable () -> Void) {
                self.name = name
                self.body = body
            }
        }
        let box = Unmanaged.passRetained(Box(name, body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            recker_set_thread_name(String(box.name.prefix(15)))
            box.body()
            return nil
        }, box)
        guard rc == 0 else { fatalError("pthread_create: \(String(cString: strerror(rc)))") }
        if !joinable { pthread_detach(thread) }
        return Thread(id: thread)
    }
}
