import Foundation
import XCTest
@testable import ReckerProtocol

/// The stats document's decoding (no Foundation in the library), against the example in
/// docs/PROTOCOL.md and against documents a broken daemon could send.
final class ReckerStatsTests: XCTestCase {
    /// The JSON example of docs/PROTOCOL.md §2.12, with the domain's fields filled in.
    static func protocolExample() throws -> [UInt8] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/PROTOCOL.md"), encoding: .utf8)
        let block = doc.components(separatedBy: "```json\n")[1].components(separatedBy: "```")[0]
        let domain = #"{ "requests_total": 31, "connections_idle": 1, "http_version": "2", "latency_us": { "p50": 480.4 } }"#
        return Array(block.replacingOccurrences(of: "{ …the same fields, for this domain only… }", with: domain).utf8)
    }

    func testTheProtocolsExampleDecodes() throws {
        let s = try ReckerStats(json: try Self.protocolExample())
        XCTAssertEqual(s.schema, 1)
        XCTAssertEqual(s.uptimeSeconds, 12.5)
        XCTAssertEqual(s.clients, 2)
        XCTAssertEqual(s.total.requestsTotal, 31)
        XCTAssertEqual(s.total.connectionsCreated, 1)
        XCTAssertEqual(s.total.reuseRatio, 0.9677)
        XCTAssertEqual(s.total.bytesIn, 527)
        XCTAssertEqual(s.total.httpVersion, "2")
        XCTAssertEqual(s.total.latency, ReckerStats.Summary(p50: 480, p90: 610, p99: 4300, sum: 19870, count: 31))
        XCTAssertEqual(s.total.queueTime.p99, 31)
        let d = try XCTUnwrap(s.domains["127.0.0.1:8080"])
        XCTAssertEqual(d.requestsTotal, 31)
        XCTAssertEqual(d.connectionsIdle, 1)
        XCTAssertEqual(d.latency.p50, 480, "a fractional number is rounded")
        XCTAssertEqual(d.timeouts, 0, "a field left out reads 0")
        XCTAssertEqual(s.users, [:])
    }

    func testUsersUnknownFieldsAndEscapes() throws {
        let json = #"""
            {"schema":1,"future":{"a":[1,2,{"b":null}],"c":true},"users":{"1000":{"requests_total":5,"reused":4},"x":{}},
             "domains":{"caf\u00e9.example:443":{"requests_total":1},"\ud83d\ude00:1":{"bytes_out":9007199254740993}}}
            """#
        let s = try ReckerStats(json: Array(json.utf8))
        XCTAssertEqual(s.users, [1000: ReckerStats.UserCounts(requestsTotal: 5, reused: 4)], "a key that is no uid is skipped")
        XCTAssertEqual(s.domains["café.example:443"]?.requestsTotal, 1)
        XCTAssertEqual(s.domains["😀:1"]?.bytesOut, 9007199254740993, "integers are read exactly, past 2^53")
    }

    func testBrokenDocumentsAreMalformedNeverATrap() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        for text in ["", "[]", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":\"\u{01}\"}", "{\"a\":\"\\x\"}",
                     "{\"a\":\"\\u12\"}", "{} x", "{\"a\":tru}", "{\"a\":-}", "\"just a string\"", deep] {
            XCTAssertThrowsError(try ReckerStats(json: Array(text.utf8)), String(text.prefix(20))) { error in
                XCTAssertEqual((error as? ReckerError)?.code, .malformedFrame, "\(error)")
            }
        }
        XCTAssertThrowsError(try ReckerStats(json: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]), "a key that is not UTF-8")
    }
}
