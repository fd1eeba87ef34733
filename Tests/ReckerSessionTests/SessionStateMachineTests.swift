import ReckerProtocol
import ReckerSession
import XCTest

/// The session's rules without a socket: frames and engine events in, actions out.
final class SessionStateMachineTests: XCTestCase {
    let me = PeerCredentials(pid: 42, uid: 1000, gids: [1000])

    func frame(_ message: Message) -> Frame {
        var reader = FrameReader()
        reader.append(try! message.encoded)
        return try! reader.next()!
    }

    func open(_ config: SessionConfig = SessionConfig()) -> SessionStateMachine {
        var m = SessionStateMachine(client: 1, peer: me, now: 0)
        let actions = m.receive(frame(.hello(.init())), transfer: 0, config: config, draining: false, now: 0)
        guard case .write(.welcome) = actions.first else { XCTFail("no WELCOME: \(actions)"); return m }
        XCTAssertEqual(m.state, .open)
        return m
    }

    func closeCode(_ actions: [SessionStateMachine.Action]) -> ReckerError.Code? {
        for a in actions { if case .close(let e) = a { return e.code } }
        return nil
    }

    func errorCode(_ actions: [SessionStateMachine.Action], stream: UInt32) -> ReckerError.Code? {
        for a in actions { if case .write(.error(let s, let e)) = a, s == stream { return e.code } }
        return nil
    }

    /// Starts a request on stream `id` under transfer `transfer`; false if it did not start.
    @discardableResult
    func request(_ m: inout SessionStateMachine, _ id: UInt32, transfer: TransferID, end: Bool = true, config: SessionConfig = SessionConfig()) -> Bool {
        let actions = m.receive(frame(.requestHead(stream: id, RequestHead(url: "http://127.0.0.1:9/x"), endRequest: end)),
                                transfer: transfer, config: config, draining: false, now: 1)
        return actions.contains { if case .engine(.start(transfer, _)) = $0 { true } else { false } }
    }

    func testTheFirstFrameMustBeHello() {
        var m = SessionStateMachine(client: 1, peer: me, now: 0)
        let actions = m.receive(frame(.ping([0, 0, 0, 0, 0, 0, 0, 7])), transfer: 0, config: SessionConfig(), draining: false, now: 0)
        XCTAssertEqual(closeCode(actions), .badHandshake)
    }

    func testAUserNotAllowedIsRefusedAtHello() {
        var config = SessionConfig()
        config.allowUsers = [0]
        var m = SessionStateMachine(client: 1, peer: me, now: 0)
        XCTAssertEqual(closeCode(m.receive(frame(.hello(.init())), transfer: 0, config: config, draining: false, now: 0)), .accessDenied)
        var unknown = SessionStateMachine(client: 2, peer: nil, now: 0)
        XCTAssertEqual(closeCode(unknown.receive(frame(.hello(.init())), transfer: 0, config: SessionConfig(), draining: false, now: 0)), .accessDenied)
    }

    /// The transfer id comes with the frame: the request starts under it, and its body goes
    /// to it as it arrives.
    func testARequestStartsUnderTheIdItCameWithAndItsBodyFollows() {
        var m = open()
        let head = m.receive(frame(.requestHead(stream: 1, RequestHead(method: "PUT", url: "http://127.0.0.1:9/x", bodyLength: 3), endRequest: false)),
                             transfer: 77, config: SessionConfig(), draining: false, now: 1)
        guard case .engine(.start(77, _)) = head.first else { return XCTFail("\(head)") }
        let sent = m.receive(frame(.requestBody(stream: 1, [1, 2, 3], endRequest: true)), transfer: 78, config: SessionConfig(), draining: false, now: 2)
        guard case .engine(.sendBody(77, [1, 2, 3], end: true)) = sent.first else { return XCTFail("\(sent)") }
    }

    /// No HELLO within the handshake's time closes the connection BAD_HANDSHAKE; after it
    /// no handshake timer runs.
    func testTheHandshakeHasItsTimeAndNoMore() {
        let t0: UInt64 = 5_000_000_000
        var m = SessionStateMachine(client: 1, peer: me, now: t0)
        XCTAssertEqual(m.deadline(), t0 + SessionStateMachine.handshakeTimeoutNs)
        XCTAssertTrue(m.timedOut(now: t0 + SessionStateMachine.handshakeTimeoutNs - 1).isEmpty, "early: nothing")
        XCTAssertEqual(closeCode(m.timedOut(now: t0 + SessionStateMachine.handshakeTimeoutNs)), .badHandshake)
        XCTAssertNil(m.deadline(), "closing: no more timers")
        XCTAssertTrue(m.receive(frame(.hello(.init())), transfer: 0, config: SessionConfig(), draining: false, now: t0).isEmpty,
                      "nothing is read once closing")
        let open = open()
        XCTAssertNil(open.deadline(), "after HELLO, no handshake timer")
    }

    /// A frame begun must finish within its time, counted from when it began, not from its
    /// last byte; a finished one stops the timer.
    func testABegunFrameHasItsTimeFromWhenItBegan() {
        var m = open()
        let limit = SessionStateMachine.partialFrameTimeoutNs
        m.inputBuffered(partialFrame: true, now: 100)
        m.inputBuffered(partialFrame: true, now: 200)
        XCTAssertEqual(m.deadline(), 100 + limit, "more bytes of the same frame do not restart it")
        m.inputBuffered(partialFrame: false, now: 300)
        XCTAssertNil(m.deadline())
        m.inputBuffered(partialFrame: true, now: 400)
        XCTAssertTrue(m.timedOut(now: 399 + limit).isEmpty)
        XCTAssertEqual(closeCode(m.timedOut(now: 400 + limit)), .malformedFrame)
    }

    func testBodyPastTheWindowIsAFlowControlError() {
        var config = SessionConfig()
        config.streamWindow = 4
        var m = open(config)
        request(&m, 1, transfer: 5, end: false, config: config)
        let actions = m.receive(frame(.requestBody(stream: 1, [1, 2, 3, 4, 5], endRequest: true)), transfer: 0, config: config, draining: false, now: 2)
        XCTAssertEqual(closeCode(actions), .flowControlError)
    }

    func testResponseBodyStaysWithinTheClientsWindowAndEndsAfterIt() {
        var config = SessionConfig()
        config.streamWindow = 10
        var m = open(config)
        request(&m, 1, transfer: 9, config: config)
        _ = m.responseHead(9, ResponseHead(status: 200, httpVersion: 11, connectionID: 1, reused: false), debug: false)
        var out = m.responseBody(9, Array(repeating: 7, count: 25), config: config)
        out += m.responseEnd(9, ResponseEnd(totalMicros: 1, bodyBytes: 25), config: config)
        var written = out.compactMap { a -> Int? in if case .writeBody(1, _, let r) = a { r.count } else { nil } }
        XCTAssertEqual(written, [10], "only the window's 10 bytes go out")
        XCTAssertFalse(out.contains { if case .write(.responseEnd) = $0 { true } else { false } }, "no end before the body")
        out = m.receive(frame(.windowUpdate(stream: 1, increment: 100)), transfer: 0, config: config, draining: false, now: 3)
        written = out.compactMap { a -> Int? in if case .writeBody(1, _, let r) = a { r.count } else { nil } }
        XCTAssertEqual(written, [15])
        XCTAssertTrue(out.contains { if case .write(.responseEnd(1, _)) = $0 { true } else { false } })
        XCTAssertEqual(m.inFlight, 0)
    }

    func testNothingIsPumpedWhileTheClientDoesNotRead() {
        var m = open()
        request(&m, 1, transfer: 9)
        XCTAssertTrue(m.writabilityChanged(false, config: SessionConfig()).isEmpty)
        XCTAssertTrue(m.responseBody(9, [1, 2, 3], config: SessionConfig()).isEmpty)
        let resumed = m.writabilityChanged(true, config: SessionConfig())
        XCTAssertEqual(resumed.compactMap { a -> Int? in if case .writeBody(1, _, let r) = a { r.count } else { nil } }, [3])
    }

    func testProgressIsReportedInQuartersOfTheResponseBuffer() {
        var config = SessionConfig()
        config.responseBuffer = 400
        var m = open(config)
        request(&m, 1, transfer: 9, config: config)
        let first = m.responseBody(9, Array(repeating: 0, count: 99), config: config)
        XCTAssertFalse(first.contains { if case .engine(.consumed) = $0 { true } else { false } })
        let second = m.responseBody(9, [0], config: config)
        XCTAssertTrue(second.contains { if case .engine(.consumed(9, 100)) = $0 { true } else { false } }, "\(second)")
    }

    /// With the default 1 MiB buffer the engine hears of progress every 64 KiB, not every
    /// quarter: a client reading slowly is not taken for a stalled one between reports.
    func testProgressIsReportedAtLeastEvery64KiB() {
        var config = SessionConfig()
        config.streamWindow = 1 << 20
        var m = open(config)
        request(&m, 1, transfer: 9, config: config)
        XCTAssertFalse(m.responseBody(9, Array(repeating: 0, count: 65535), config: config)
            .contains { if case .engine(.consumed) = $0 { true } else { false } })
        XCTAssertTrue(m.responseBody(9, [0], config: config)
            .contains { if case .engine(.consumed(9, 65536)) = $0 { true } else { false } })
    }

    func testStatsRequestsAreLimitedPerConnectionAndHoldTheirStream() {
        var m = open()
        for id: UInt32 in 1 ... 4 {
            let a = m.receive(frame(.statsRequest(stream: id)), transfer: 0, config: SessionConfig(), draining: false, now: 1)
            guard case .stats(id, .json) = a.first else { return XCTFail("\(a)") }
        }
        XCTAssertEqual(errorCode(m.receive(frame(.statsRequest(stream: 5)), transfer: 0, config: SessionConfig(), draining: false, now: 1), stream: 5),
                       .tooManyInFlight)
        XCTAssertEqual(closeCode(m.receive(frame(.requestHead(stream: 3, RequestHead(url: "http://127.0.0.1:9/"), endRequest: true)), transfer: 0, config: SessionConfig(), draining: false, now: 1)), .invalidStream)
    }

    func testAStatsDocumentLargerThanAFrameGoesInSeveral() {
        var config = SessionConfig()
        config.maxFrame = 16
        var m = open(config)
        _ = m.receive(frame(.statsRequest(stream: 2)), transfer: 0, config: config, draining: false, now: 1)
        let out = m.statsReady(stream: 2, Array(repeating: 65, count: 25), config: config)
        let sizes = out.compactMap { a -> (Int, Bool)? in if case .write(.statsResponse(2, let json, let more)) = a { (json.count, more) } else { nil } }
        XCTAssertEqual(sizes.map(\.0), [10, 10, 5])
        XCTAssertEqual(sizes.map(\.1), [true, true, false])
    }

    func testDrainingRefusesNewRequestsOnly() {
        var m = open()
        let a = m.receive(frame(.requestHead(stream: 1, RequestHead(url: "http://127.0.0.1:9/"), endRequest: true)), transfer: 0, config: SessionConfig(), draining: true, now: 1)
        XCTAssertEqual(errorCode(a, stream: 1), .shuttingDown)
        XCTAssertEqual(m.state, .open)
    }

    func testClosingCancelsEveryStartedTransfer() {
        var m = open()
        for id: UInt32 in [1, 3, 5] {
            request(&m, id, transfer: TransferID(id) * 10)
        }
        let cancels = m.closed().compactMap { a -> TransferID? in if case .engine(.cancel(let t)) = a { t } else { nil } }
        XCTAssertEqual(Set(cancels), [10, 30, 50])
        XCTAssertEqual(m.state, .closed)
        XCTAssertTrue(m.receive(frame(.ping([0, 0, 0, 0, 0, 0, 0, 1])), transfer: 0, config: SessionConfig(), draining: false, now: 9).isEmpty, "nothing after close")
    }

    func testAFailedTransferEndsItsStreamWithItsError() {
        var m = open()
        request(&m, 1, transfer: 4)
        let out = m.failed(4, ReckerError(.connectFailed, "refused"))
        XCTAssertEqual(errorCode(out, stream: 1), .connectFailed)
        XCTAssertTrue(out.contains { if case .log(.warning, _, let fields) = $0 { fields["domain"] != nil && fields["request_id"] == "4" } else { false } },
                      "upstream failures are warnings, with DOMAIN and REQUEST_ID as journal fields")
        XCTAssertTrue(m.failed(4, ReckerError(.connectFailed, "again")).isEmpty, "a transfer ends once")
    }
}
