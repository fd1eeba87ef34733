import Glibc
import ReckerLoop
import XCTest

/// The event loop turned by hand on a manual clock: timers, the work of a pass and
/// descriptors, with no waiting.
final class EventLoopTests: XCTestCase {
    let second: UInt64 = 1_000_000_000

    func testTimersFireInOrderOnceTheirTimeHasComeAndCancelledOnesNever() throws {
        let clock = ManualClock()
        let loop = try EventLoop(clock: clock.read)
        loop.turn()
        let t0 = loop.now
        var fired: [String] = []
        loop.schedule(at: t0 + 3 * second) { fired.append("3 s") }
        loop.schedule(at: t0 + 1 * second) { fired.append("1 s") }
        let cancelled = loop.schedule(at: t0 + 2 * second) { fired.append("2 s") }
        loop.schedule(at: t0 + 2 * second) { fired.append("2 s, kept") }
        loop.cancel(cancelled)
        loop.turn()
        XCTAssertEqual(fired, [], "no time has passed")
        clock.advance(by: second - 1)
        loop.turn()
        XCTAssertEqual(fired, [], "one nanosecond early")
        clock.advance(by: 1)
        loop.turn()
        XCTAssertEqual(fired, ["1 s"])
        clock.advance(by: 10 * second)
        loop.turn()
        XCTAssertEqual(fired, ["1 s", "2 s, kept", "3 s"], "in deadline order, the cancelled one never")
        XCTAssertEqual(loop.now, t0 + 11 * second, "the loop's time is the clock's, read once per pass")
    }

    /// A timer set by a timer fires in a later pass, even when it is due already, so a
    /// pass always ends; one set for later waits for the clock.
    func testATimerSetFromATimerWaitsForTheNextPass() throws {
        let clock = ManualClock()
        let loop = try EventLoop(clock: clock.read)
        var fired: [Int] = []
        loop.schedule(at: loop.now + 5) {
            fired.append(1)
            loop.schedule(at: loop.now) { fired.append(2) }
            loop.schedule(at: loop.now + 5) { fired.append(3) }
        }
        clock.advance(by: 5)
        loop.turn()
        XCTAssertEqual(fired, [1])
        loop.turn()
        XCTAssertEqual(fired, [1, 2], "due already: the next pass")
        clock.advance(by: 5)
        loop.turn()
        XCTAssertEqual(fired, [1, 2, 3])
    }

    /// A timer that sets itself again for now on every run (libcurl asking for a timeout of
    /// 0 each time) does not hold the loop: each pass runs it once, and a job handed in and
    /// a descriptor that became readable are served in the same turns.
    func testATimerThatAlwaysWantsNowDoesNotHoldTheLoop() throws {
        let loop = try EventLoop(clock: ManualClock().read)
        var runs = 0
        func again() {
            loop.schedule(at: loop.now) {
                runs += 1
                again()
            }
        }
        again()
        var pair: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &pair), 0)
        defer { close(pair[0]); close(pair[1]) }
        var readable = 0
        _ = try loop.register(pair[0], .readable) { _ in readable += 1 }
        XCTAssertEqual(write(pair[1], "x", 1), 1)
        let flag = LockedFlag()
        loop.execute { flag.set() }
        loop.turn()
        XCTAssertEqual(runs, 1, "once per pass")
        XCTAssertTrue(flag.value)
        XCTAssertEqual(readable, 1)
        loop.turn()
        XCTAssertEqual(runs, 2)
    }

    /// Work asked for during a pass (here by a timer): `soon` runs at the end of that pass,
    /// before the loop waits again; `nextPass` in the next pass, after the descriptors and
    /// timers due then; `atEndOfEveryPass` at the end of each.
    func testTheWorkOfAPass() throws {
        let loop = try EventLoop(clock: ManualClock().read)
        var log: [String] = []
        loop.atEndOfEveryPass { log.append("end") }
        loop.schedule(at: loop.now) {
            log.append("timer")
            loop.soon { log.append("soon") }
            loop.nextPass { log.append("next") }
        }
        loop.turn()
        XCTAssertEqual(log, ["end", "timer"])
        loop.turn()
        XCTAssertEqual(log, ["end", "timer", "soon", "end", "next"], "the pass's end, then the next pass's work")
        loop.turn()
        XCTAssertEqual(log, ["end", "timer", "soon", "end", "next", "end"], "once")
    }

    /// A descriptor is reported while its interest says so: readable with bytes waiting,
    /// nothing with no interest, nothing once unregistered; a job handed in from another
    /// thread runs on the next turn; a stopped loop says so.
    func testDescriptorsJobsAndStop() throws {
        let loop = try EventLoop(clock: ManualClock().read)
        var pair: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &pair), 0)
        defer { close(pair[0]); close(pair[1]) }
        var seen: [EventLoop.Events] = []
        let r = try loop.register(pair[0], .readable) { seen.append($0) }
        loop.turn()
        XCTAssertTrue(seen.isEmpty, "nothing to read yet")
        XCTAssertEqual(write(pair[1], "x", 1), 1)
        loop.turn()
        XCTAssertEqual(seen.count, 1)
        XCTAssertTrue(seen[0].contains(.readable))
        loop.modify(r, [])
        loop.turn()
        XCTAssertEqual(seen.count, 1, "no interest, no report (the byte is still there)")
        loop.modify(r, .readable)
        loop.turn()
        XCTAssertEqual(seen.count, 2)
        loop.unregister(r)
        loop.turn()
        XCTAssertEqual(seen.count, 2)
        XCTAssertFalse(loop.isRegistered(r))

        let ran = DispatchSemaphore(value: 0)
        let flag = LockedFlag()
        Thread.detachNewThread {
            loop.execute { flag.set() }
            ran.signal()
        }
        XCTAssertEqual(ran.wait(timeout: .now() + 5), .success)
        XCTAssertFalse(flag.value)
        loop.turn()
        XCTAssertTrue(flag.value, "run on the loop's next turn")
        loop.stop()
        XCTAssertFalse(loop.turn(), "stopped")
    }
}

/// A flag set by a job from another thread and read by the test.
final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set_ = false
    func set() { lock.lock(); set_ = true; lock.unlock() }
    var value: Bool { lock.lock(); defer { lock.unlock() }; return set_ }
}
