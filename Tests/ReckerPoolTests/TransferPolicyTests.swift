import CReckerCurl
@testable import ReckerPool
import ReckerProtocol
import XCTest

/// How transfers end, with plain values: no libcurl handle, no socket, no clock.
final class TransferPolicyTests: XCTestCase {
    func outcome(_ result: CURLcode, method: String = "GET", _ change: (inout TransferPolicy.Outcome) -> Void = { _ in }) -> TransferPolicy.Outcome {
        var o = TransferPolicy.Outcome(result: result, head: RequestHead(method: method, url: "http://127.0.0.1:9/x"))
        change(&o)
        return o
    }

    func failure(_ v: TransferPolicy.Verdict) -> ReckerError? {
        if case .failed(let e, _) = v { return e }
        return nil
    }

    func testSuccessUnlessTheHeadWasCutOffOrInterim() {
        XCTAssertEqual(TransferPolicy.verdict(outcome(CURLE_OK)), .succeeded)
        let cut = failure(TransferPolicy.verdict(outcome(CURLE_OK) { $0.sawResponse = true; $0.headComplete = false }))
        XCTAssertEqual(cut?.code, .upstreamProtocol)
        XCTAssertEqual(cut?.mayHaveReachedUpstream, true)
        let interim = failure(TransferPolicy.verdict(outcome(CURLE_OK) { $0.interimAsFinal = "an unasked-for 101" }))
        XCTAssertEqual(interim?.message, "an unasked-for 101")
        XCTAssertEqual(TransferPolicy.verdict(outcome(CURLE_RECV_ERROR) { $0.headOnlyAnswered = true }), .succeeded,
                       "a head-only answer is whole whatever libcurl says after it")
    }

    /// A reused connection that died before any answer: an idempotent request (or one whose
    /// body is kept) goes once more on a fresh connection; a POST, a second death, a
    /// warm-up or an answer begun do not.
    func testStartingOverOnAFreshConnection() {
        func died(_ method: String = "GET", _ change: (inout TransferPolicy.Outcome) -> Void = { _ in }) -> TransferPolicy.Verdict {
            TransferPolicy.verdict(outcome(CURLE_HTTP2_STREAM, method: method) { $0.startedOnReuse = true; change(&$0) })
        }
        XCTAssertEqual(died(), .startOver)
        XCTAssertEqual(died("PUT") { $0.hasBody = true; $0.replayable = true }, .startOver)
        XCTAssertNotEqual(died("PUT") { $0.hasBody = true; $0.replayable = false }, .startOver, "the body was not kept")
        XCTAssertNotEqual(died("POST"), .startOver)
        XCTAssertNotEqual(died { $0.restarts = 1 }, .startOver, "at most once")
        XCTAssertNotEqual(died { $0.sawResponse = true }, .startOver)
        XCTAssertNotEqual(died { $0.isWarmUp = true }, .startOver)
        XCTAssertNotEqual(died { $0.startedOnReuse = false }, .startOver, "a fresh connection that dies is the upstream's answer")
        XCTAssertNotEqual(TransferPolicy.verdict(outcome(CURLE_COULDNT_CONNECT) { $0.startedOnReuse = true }), .startOver)
        XCTAssertEqual(TransferPolicy.verdict(outcome(CURLE_RECV_ERROR) { $0.restartFresh = true }), .startOver)
    }

    func testNothingSentErrorsSaySo() {
        let denied = failure(TransferPolicy.verdict(outcome(CURLE_COULDNT_CONNECT) { $0.deniedDestination = "169.254.169.254 is link-local" }))
        XCTAssertEqual(denied?.code, .destinationDenied)
        XCTAssertEqual(denied?.mayHaveReachedUpstream, false)
        let verdict = TransferPolicy.verdict(outcome(CURLE_COULDNT_CONNECT) { $0.socketError = EMFILE })
        guard case .failed(let e, .localShortage(let reason)) = verdict else { return XCTFail("\(verdict)") }
        XCTAssertEqual(e.code, .localResources)
        XCTAssertEqual(e.detail, UInt32(EMFILE))
        XCTAssertFalse(reason.isEmpty)
        XCTAssertEqual(failure(TransferPolicy.verdict(outcome(CURLE_COULDNT_CONNECT) { $0.socketError = ECONNREFUSED }))?.code, .connectFailed,
                       "a refused connect is the upstream's, not a shortage here")
    }

    func testAnUpstreamThatBreaksTheProtocolIsUpstreamProtocol() {
        XCTAssertEqual(failure(TransferPolicy.verdict(outcome(CURLE_TOO_LARGE) { $0.sawResponse = true }))?.code, .upstreamProtocol)
        XCTAssertEqual(failure(TransferPolicy.verdict(outcome(CURLE_UNSUPPORTED_PROTOCOL) { $0.effectiveURLIsHTTP = true }))?.code,
                       .upstreamProtocol, "HTTP/0.9")
        XCTAssertEqual(failure(TransferPolicy.verdict(outcome(CURLE_UNSUPPORTED_PROTOCOL)))?.code, .upstreamFailed,
                       "a redirect to another scheme")
        XCTAssertEqual(failure(TransferPolicy.verdict(outcome(CURLE_RECV_ERROR) { $0.errorText = "Too large response headers: 307200 > 307200" }))?.code,
                       .upstreamProtocol)
        XCTAssertEqual(failure(TransferPolicy.verdict(outcome(CURLE_RECV_ERROR) { $0.headRefused = "a folded line" }))?.message, "a folded line")
    }

    func testABodyThatCannotBeSentAgain() {
        let redirect = failure(TransferPolicy.verdict(outcome(CURLE_SEND_FAIL_REWIND, method: "PUT") { $0.sawResponse = true; $0.status = 307; $0.responseBuffer = 1024 }))
        XCTAssertEqual(redirect?.code, .upstreamFailed)
        XCTAssertTrue(redirect?.message.contains("307") == true && redirect?.message.contains("1024 bytes") == true, redirect?.message ?? "")
        let resend = TransferPolicy.verdict(outcome(CURLE_SEND_FAIL_REWIND, method: "PUT"))
        guard case .failed(let e, .retry) = resend else { return XCTFail("\(resend)") }
        XCTAssertEqual(e.code, .upstreamRecvFailed)
        XCTAssertEqual(e.mayHaveReachedUpstream, true)
        XCTAssertEqual(e.retrySafe, false, "PUT is not safe to retry blindly")
    }

    /// Refused on every try (REFUSED_STREAM on a fresh connection): never processed, safe
    /// to retry. Refused on a reused HTTP/2 connection: libcurl does not say why, so the
    /// flags stay on the safe side.
    func testRefusedStreams() {
        let never = failure(TransferPolicy.verdict(outcome(CURLE_HTTP2_STREAM, method: "POST") { $0.resendRefused = true; $0.neverProcessed = true }))
        XCTAssertEqual(never?.mayHaveReachedUpstream, false)
        XCTAssertEqual(never?.retrySafe, true)
        let unknown = failure(TransferPolicy.verdict(outcome(CURLE_HTTP2_STREAM, method: "POST") { $0.resendRefused = true; $0.resentAfterHTTP2 = true }))
        XCTAssertEqual(unknown?.mayHaveReachedUpstream, true)
        XCTAssertEqual(unknown?.retrySafe, false)
        XCTAssertTrue(unknown?.message.contains("not idempotent") == true, unknown?.message ?? "")
        let twice = failure(TransferPolicy.verdict(outcome(CURLE_RECV_ERROR) { $0.resendRefused = true }))
        XCTAssertTrue(twice?.message.contains("a second time") == true, twice?.message ?? "")
    }

    /// libcurl's timeout is TIMEOUT once the request's total_timeout has run out, whatever
    /// libcurl was doing; before that, a connect that never finished is CONNECT_TIMEOUT.
    func testTimeouts() {
        let total = failure(TransferPolicy.verdict(outcome(CURLE_OPERATION_TIMEDOUT) { $0.totalTimeoutMs = 100; $0.elapsed = 100_000_000 }))
        XCTAssertEqual(total?.code, .timeout)
        XCTAssertTrue(total?.message.contains("total_timeout of 100 ms") == true)
        XCTAssertEqual(failure(TransferPolicy.verdict(outcome(CURLE_OPERATION_TIMEDOUT) { $0.totalTimeoutMs = 100; $0.elapsed = 99_999_999 }))?.code,
                       .connectTimeout)
        XCTAssertEqual(failure(TransferPolicy.verdict(outcome(CURLE_OPERATION_TIMEDOUT) { $0.connected = true }))?.code, .timeout)
    }

    func testAnEarlierAttemptThatWentOutMayHaveReachedTheUpstream() {
        let connect = ReckerError(.connectFailed, "refused", mayHaveReachedUpstream: false, retrySafe: true)
        let head = RequestHead(method: "POST", url: "http://127.0.0.1:9/x")
        let after = TransferPolicy.reached(connect, sentBefore: true, neverProcessed: false, head: head)
        XCTAssertEqual(after?.mayHaveReachedUpstream, true)
        XCTAssertEqual(after?.retrySafe, false)
        XCTAssertEqual(TransferPolicy.reached(connect, sentBefore: false, neverProcessed: false, head: head), connect)
        XCTAssertEqual(TransferPolicy.reached(connect, sentBefore: true, neverProcessed: true, head: head), connect)
        XCTAssertNil(TransferPolicy.reached(nil, sentBefore: true, neverProcessed: false, head: head))
    }

    // MARK: - stalls

    let second: UInt64 = 1_000_000_000

    func stall(_ now: UInt64, othersWait: Bool = false, _ change: (inout TransferPolicy.Progress) -> Void) -> ReckerError? {
        var p = TransferPolicy.Progress(method: "GET")
        p.connected = true
        p.lastActivity = now
        change(&p)
        return TransferPolicy.stall(p, now: now, bodyTimeoutMs: 30_000, readTimeoutMs: 15_000, othersWait: { othersWait })
    }

    func testAClientThatTakesNothingForBodyTimeout() {
        XCTAssertNil(stall(40 * second) { $0.recvPaused = true; $0.recvPausedSince = 10 * second + 1 })
        XCTAssertTrue(stall(40 * second) { $0.recvPaused = true; $0.recvPausedSince = 10 * second }?.message.contains("read none") == true)
        XCTAssertTrue(stall(40 * second) { $0.sendPaused = true; $0.sendPausedSince = 10 * second }?.message.contains("sent no request body") == true)
        XCTAssertNil(stall(5 * second) { $0.recvPaused = true; $0.recvPausedSince = 9 * second }, "an instant after now is no time at all")
    }

    /// A client that reads nothing for the grace, with no spill file for its bytes, fails
    /// only while others wait for its connection; a client that reads, however slowly, does
    /// not (the grace counts from its last read).
    func testAStalledReaderGivesWayToOthersAfterTheGrace() {
        let grace = TransferPolicy.stalledReaderGrace
        func paused(_ p: inout TransferPolicy.Progress) {
            p.recvPaused = true
            p.recvPausedSince = 1 * second
            p.spillRefused = "its user's spill budget is full"
        }
        XCTAssertNotNil(stall(1 * second + grace, othersWait: true, paused))
        XCTAssertNil(stall(1 * second + grace, othersWait: false, paused), "nobody waits")
        XCTAssertNil(stall(1 * second + grace - 1, othersWait: true, paused))
        XCTAssertNil(stall(1 * second + grace, othersWait: true) { paused(&$0); $0.lastRead = 2 * second }, "it read a second ago")
        XCTAssertNil(stall(1 * second + grace, othersWait: true) { paused(&$0); $0.spillRefused = nil }, "a spill file takes its bytes")
        XCTAssertNil(stall(1 * second + grace, othersWait: true) { paused(&$0); $0.isWarmUp = true })
    }

    func testAnUpstreamThatMovesNothingForReadTimeout() {
        XCTAssertTrue(stall(20 * second) { $0.lastActivity = 5 * second }?.message.contains("agent.readTimeout") == true)
        XCTAssertNil(stall(20 * second) { $0.lastActivity = 5 * second + 1 })
        XCTAssertNil(stall(20 * second) { $0.lastActivity = 0; $0.connected = false }, "a connect is connectTimeout's")
        XCTAssertNil(stall(20 * second) { $0.lastActivity = 0; $0.recvPaused = true; $0.recvPausedSince = 19 * second },
                     "the client is the one that stands still")
    }

    func testAPauseStartsItsClockAndItsEndStartsTheUpstreamsOver() {
        var p = TransferPolicy.Progress(method: "GET")
        p.connected = true
        p.pauseReceiving(true, now: 10 * second)
        p.pauseReceiving(true, now: 12 * second)
        XCTAssertEqual(p.recvPausedSince, 10 * second, "a pause that goes on keeps its start")
        XCTAssertNotNil(TransferPolicy.stall(p, now: 40 * second, bodyTimeoutMs: 30_000, readTimeoutMs: 15_000, othersWait: { false }))
        p.pauseReceiving(false, now: 39 * second)
        XCTAssertEqual(p.lastActivity, 39 * second)
        XCTAssertNil(TransferPolicy.stall(p, now: 40 * second, bodyTimeoutMs: 30_000, readTimeoutMs: 15_000, othersWait: { false }),
                     "the upstream's clock starts when the client's wait ends")
        p.pauseSending(true, now: 41 * second)
        p.pauseSending(true, now: 42 * second)
        XCTAssertEqual(p.sendPausedSince, 41 * second, "a pause that goes on keeps its start")
        XCTAssertNotNil(TransferPolicy.stall(p, now: 71 * second, bodyTimeoutMs: 30_000, readTimeoutMs: 15_000, othersWait: { false }))
        p.pauseSending(false, now: 70 * second)
        XCTAssertEqual(p.lastActivity, 70 * second)
        XCTAssertNil(TransferPolicy.stall(p, now: 71 * second, bodyTimeoutMs: 30_000, readTimeoutMs: 15_000, othersWait: { false }))
    }
}
