import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// Limits WELCOME announced hold for that connection's life: a reload that lowers
/// `streamWindow`, `maxFrame` or `maxInFlightPerClient` applies to connections opened after
/// it, never to one that was told the old values.
final class ReloadLimitsTests: XCTestCase {
    func testAReloadKeepsThePromisesMadeToOpenConnections() async throws {
        let server = try FaultServer()
        let before = #"{ "limits": { "streamWindow": 262144, "maxFrame": 1048576, "maxInFlightPerClient": 64 } }"#
        let daemon = try DaemonProcess(config: before)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let warm = try await client.send(ReckerRequest(url: server.url("/delay/1")))
        XCTAssertEqual(warm.status, 200)

        try #"{ "limits": { "streamWindow": 4096, "maxFrame": 262144, "maxInFlightPerClient": 2 } }"#
            .write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        kill(daemon.pid, SIGHUP)
        XCTAssertTrue(TestEnvironment.eventually(10) {
            guard let probe = try? ReckerConnection(socketPath: daemon.socketPath) else { return false }
            defer { probe.close() }
            return probe.welcome.maxFrame == 262144
        }, "new connections get the new limits")

        // The open connection: a 100 kB POST in 1 MB frames within a 256 kB window, and 8
        // requests at once, as WELCOME said it may.
        let body = [UInt8](Fixtures.bytes(100_000, seed: 3))
        let post = try await client.send(ReckerRequest(method: "POST", url: server.url("/digest"), body: body))
        XCTAssertEqual(String(decoding: post.body, as: UTF8.self), "POST \(body.count) \(String(FaultServer.fnv1a(body), radix: 16))")
        let batch = await client.batch((0 ..< 8).map { _ in ReckerRequest(url: server.url("/delay/200")) }, concurrency: 8)
        XCTAssertEqual(batch.stats.failed, 0, "\(batch.results)")

        // A new connection is held to the new ones.
        let fresh = try ReckerConnection(socketPath: daemon.socketPath)
        fresh.socket.setReceiveTimeout(milliseconds: 10_000)
        defer { fresh.close() }
        XCTAssertEqual(fresh.welcome.maxInFlight, 2)
        XCTAssertEqual(fresh.welcome.initialWindow, 4096)
        for stream in [1, 3, 5] as [UInt32] {
            try fresh.send(.requestHead(stream: stream, RequestHead(url: server.url("/delay/300")), endRequest: true))
        }
        var tooMany: ReckerError?
        for _ in 0 ..< 20 where tooMany == nil {
            if case .error(_, let e) = try fresh.receive(), e.code == .tooManyInFlight { tooMany = e }
        }
        XCTAssertNotNil(tooMany, "a third request in flight is over the new limit of 2")
    }
}
