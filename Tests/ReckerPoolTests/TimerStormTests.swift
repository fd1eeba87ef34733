import ReckerTestSupport
import XCTest
@testable import ReckerPool

final class TimerStormTests: XCTestCase {
    func testAStormOfImmediateTimeoutsIsSlowedToAMillisecondAndToldOnce() {
        var storm = TimerStorm(length: 5)
        var warnings = 0
        var delays: [UInt64?] = []
        for _ in 0 ..< 8 {
            let (delay, warn) = storm.request(0, duringTimeout: true)
            delays.append(delay)
            if warn { warnings += 1 }
        }
        XCTAssertEqual(delays, [0, 0, 0, 0, 1, 1, 1, 1])
        XCTAssertEqual(warnings, 1)
        // The test harness finds a storm in a daemon's log by these words.
        XCTAssertTrue(storm.warning(holding: "x").hasPrefix(DaemonProcess.storm))
    }

    func testWhatBreaksTheRunStartsItAgain() {
        for breaker in ["socket", "later", "never"] {
            var storm = TimerStorm(length: 3)
            _ = storm.request(0, duringTimeout: true)
            _ = storm.request(0, duringTimeout: true)
            switch breaker {
            case "socket": storm.socketEvent()
            case "later": XCTAssertEqual(storm.request(5, duringTimeout: true).delayMs, 5)
            default: XCTAssertNil(storm.request(-1, duringTimeout: true).delayMs)
            }
            XCTAssertEqual(storm.run, 0, breaker)
            XCTAssertEqual(storm.request(0, duringTimeout: true).delayMs, 0, breaker)
            XCTAssertEqual(storm.request(0, duringTimeout: true).delayMs, 0, breaker)
            XCTAssertEqual(storm.request(0, duringTimeout: true).delayMs, 1, breaker)
        }
    }

    func testAnImmediateTimeoutOutsideLibcurlsTimeoutsIsNotPartOfAStorm() {
        var storm = TimerStorm(length: 2)
        for _ in 0 ..< 10 {
            XCTAssertEqual(storm.request(0, duringTimeout: false).delayMs, 0)
        }
        XCTAssertEqual(storm.run, 0)
    }
}
