import Foundation
import XCTest
@testable import ReckerProtocol

/// The codec against the test vectors in docs/PROTOCOL.md, and its refusals.
final class CodecTests: XCTestCase {
    /// (name, bytes) for each vector in docs/PROTOCOL.md's vectors block.
    static func vectors() throws -> [(String, [UInt8])] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/PROTOCOL.md"), encoding: .utf8)
        let block = doc.components(separatedBy: "<!-- vectors:begin -->")[1].components(separatedBy: "<!-- vectors:end -->")[0]
        var out: [(String, [UInt8])] = []
        for line in block.split(separator: "\n") where !line.hasPrefix(" ") && !line.hasPrefix("`") {
            let parts = line.split(separator: " ")
            let hex = parts.dropFirst().joined()
            var bytes: [UInt8] = []
            var i = hex.startIndex
            while i < hex.endIndex {
                let j = hex.index(i, offsetBy: 2)
                bytes.append(UInt8(hex[i ..< j], radix: 16)!)
                i = j
            }
            out.append((String(parts[0]), bytes))
        }
        return out
    }

    static let expected: [String: Message] = [
        "hello": .hello(.init(minVersion: 1, maxVersion: 1, features: 0)),
        "welcome": .welcome(.init(version: 1, features: 0, maxFrame: 1_048_576, maxInFlight: 256, initialWindow: 262_144)),
        "hello_limits": .hello(.init(minVersion: 1, maxVersion: 1, features: Message.Feature.limits)),
        "welcome_limits": .welcome(.init(version: 1, features: Message.Feature.limits, maxFrame: 1_048_576, maxInFlight: 256,
                                         initialWindow: 262_144, headerLimits: HeaderLimits(count: 1000, bytes: 65536))),
        "request_get": .requestHead(stream: 1, RequestHead(method: "GET", url: "http://127.0.0.1:8080/a",
                                                           headers: [("Accept", "*/*")], bodyLength: nil,
                                                           options: RequestOptions(totalTimeoutMs: 5000)), endRequest: true),
        "request_body": .requestBody(stream: 3, Array("hello".utf8), endRequest: true),
        "response_head": .responseHead(stream: 1, ResponseHead(status: 200, httpVersion: 11, connectionID: 7, reused: true,
                                                               firstByteMicros: 200, headers: [("Content-Type", "text/plain")])),
        "response_facts": .responseHead(stream: 1, ResponseHead(status: 200, httpVersion: 11, connectionID: 7, reused: true,
                                                                firstByteMicros: 200,
                                                                facts: ResponseFacts(reason: "OK", remoteIP: "127.0.0.1", remotePort: 8080,
                                                                                     localIP: "127.0.0.1", localPort: 40000))),
        "response_body": .responseBody(stream: 1, Array("ok\n".utf8)),
        "response_end": .responseEnd(stream: 1, ResponseEnd(totalMicros: 1000, bodyBytes: 3)),
        "window_update": .windowUpdate(stream: 1, increment: 65536),
        "cancel": .cancel(stream: 5),
        "error_stream": .error(stream: 2, ReckerError(.forbiddenHeader, "header forbidden", retrySafe: true)),
        "ping": .ping([1, 2, 3, 4, 5, 6, 7, 8]),
        "pong": .pong([1, 2, 3, 4, 5, 6, 7, 8]),
        "stats_request": .statsRequest(stream: 9),
        "stats_prom": .statsRequest(stream: 10, format: 1),
        "stats_response": .statsResponse(stream: 9, json: Array("{}".utf8)),
        "stats_more": .statsResponse(stream: 9, json: Array("{}".utf8), more: true),
    ]

    func testEveryVectorDecodesAndEncodesBack() throws {
        let vectors = try Self.vectors()
        XCTAssertEqual(Set(vectors.map(\.0)), Set(Self.expected.keys), "every frame type has a vector")
        for (name, bytes) in vectors {
            var reader = FrameReader()
            reader.append(bytes)
            let frame = try XCTUnwrap(try reader.next(), name)
            XCTAssertNil(try reader.next(), "\(name): no bytes left over")
            let message = try Message(frame: frame)
            XCTAssertEqual(message, Self.expected[name], name)
            XCTAssertEqual(try message.encoded, bytes, "\(name) encodes back to the same bytes")
        }
    }

    func testRoundTripWithUnknownOptionsAndUnknownLength() throws {
        var options = RequestOptions(connectTimeoutMs: 10, totalTimeoutMs: 20, followRedirects: 5, compressed: true)
        options.unknown = [(tag: 0x0077, value: [1, 2, 3])]
        options.keepMethod = true
        let m = Message.requestHead(stream: 42, RequestHead(method: "PUT", url: "https://h/x", headers: [("a", "b"), ("c", "")],
                                                              bodyLength: 12, options: options), endRequest: false)
        var reader = FrameReader()
        reader.append(try m.encoded)
        XCTAssertEqual(try Message(frame: try XCTUnwrap(try reader.next())), m)
    }

    /// PROTOCOL.md 2.3: the last of two equal tags wins, any non-zero u8 flag is on, and
    /// 0x8002 is an unknown critical tag, not total_timeout.
    func testDuplicateOptionsFlagsAndCriticalBits() throws {
        func head(_ options: [(UInt16, [UInt8])]) throws -> RequestHead {
            var w: [UInt8] = []
            func u16(_ v: UInt16) { w += [UInt8(v >> 8), UInt8(v & 0xFF)] }
            func str(_ s: String) { u16(UInt16(s.utf8.count)); w += Array(s.utf8) }
            str("GET"); str("http://h/x"); w += [UInt8](repeating: 0xFF, count: 8); u16(0)
            u16(UInt16(options.count))
            for (tag, value) in options { u16(tag); u16(UInt16(value.count)); w += value }
            let frame = Frame(type: FrameType.requestHead, flags: 1, stream: 1, body: w)
            guard case .requestHead(_, let h, _) = try Message(frame: frame) else { throw ReckerError(.malformedFrame, "not a head") }
            return h
        }
        let twice = try head([(0x0002, [0, 0, 0, 10]), (0x0002, [0, 0, 0, 20])])
        XCTAssertEqual(twice.options.totalTimeoutMs, 20)
        XCTAssertEqual(try head([(0x0004, [2])]).options.compressed, true)
        XCTAssertEqual(try head([(0x0005, [0])]).options.keepMethod, false)
        let critical = try head([(0x8002, [0, 0, 0, 10])])
        XCTAssertNil(critical.options.totalTimeoutMs)
        XCTAssertThrowsError(try RequestValidator.validate(critical)) { XCTAssertEqual(($0 as? ReckerError)?.code, .unknownCriticalOption) }
    }

    func testFramesSplitAcrossReads() throws {
        let bytes = try Self.vectors().flatMap(\.1)
        var reader = FrameReader()
        var count = 0
        for b in bytes {
            reader.append([b])
            while let f = try reader.next() { _ = try Message(frame: f); count += 1 }
        }
        XCTAssertEqual(count, Self.expected.count)
    }

    func testOversizedLengthIsRefusedBeforeThePayload() {
        var reader = FrameReader(maxLength: 1 << 20)
        reader.append([0xFF, 0xFF, 0xFF, 0xFF])
        XCTAssertThrowsError(try reader.next()) { XCTAssertEqual(($0 as? ReckerError)?.code, .frameTooLarge) }
        var small = FrameReader()
        small.append([0, 0, 0, 5, 1, 0, 0, 0, 0])
        XCTAssertThrowsError(try small.next()) { XCTAssertEqual(($0 as? ReckerError)?.code, .malformedFrame) }
    }

    func testTruncatedUnknownAndBadFrames() {
        func code(_ f: Frame) -> ReckerError.Code? {
            do { _ = try Message(frame: f); return nil } catch { return error.code }
        }
        XCTAssertEqual(code(Frame(type: 0x7E)), .unknownFrameType)
        XCTAssertEqual(code(Frame(type: FrameType.hello, body: Array("RECX".utf8) + [0, 1, 0, 1, 0, 0, 0, 0])), .badHandshake)
        XCTAssertEqual(code(Frame(type: FrameType.hello, body: Array("RECK".utf8) + [0, 1])), .malformedFrame)
        XCTAssertEqual(code(Frame(type: FrameType.windowUpdate, stream: 1, body: [0, 0, 0, 0])), .malformedFrame)
        XCTAssertEqual(code(Frame(type: FrameType.cancel, stream: 1, body: [0])), .malformedFrame)
        XCTAssertEqual(code(Frame(type: FrameType.requestHead, stream: 1, body: [0, 3, 0x47])), .malformedFrame)
        XCTAssertEqual(code(Frame(type: FrameType.requestHead, stream: 1, body: [0, 1, 0xFF] + [0, 0] + [UInt8](repeating: 0, count: 12))), .malformedFrame)
    }

    func testDoorChecks() {
        func code(_ h: RequestHead) -> ReckerError.Code? {
            do { _ = try RequestValidator.validate(h); return nil } catch { return error.code }
        }
        let ok = "http://127.0.0.1:8080/x"
        XCTAssertNil(code(RequestHead(url: ok, headers: [("X-Fine", "v")])))
        XCTAssertEqual(code(RequestHead(method: "G E T", url: ok)), .invalidMethod)
        XCTAssertEqual(code(RequestHead(method: "", url: ok)), .invalidMethod)
        XCTAssertEqual(code(RequestHead(url: "ftp://host/x")), .invalidURL)
        XCTAssertEqual(code(RequestHead(url: "http:///x")), .invalidURL)
        XCTAssertEqual(code(RequestHead(url: "/relative")), .invalidURL)
        XCTAssertEqual(code(RequestHead(url: "http://h:99999/")), .invalidURL)
        XCTAssertEqual(code(RequestHead(url: ok, headers: [("Bad Name", "v")])), .invalidHeaderName)
        XCTAssertEqual(code(RequestHead(url: ok, headers: [("X", "a\r\nInjected: 1")])), .invalidHeaderValue)
        XCTAssertEqual(code(RequestHead(url: ok, headers: [("X", "a\u{0}")])), .invalidHeaderValue)
        for name in ["Content-Length", "transfer-encoding", "Connection", "Upgrade", "Expect", "TE",
                     "Keep-Alive", "Trailer", "Proxy-Authorization"] {
            XCTAssertEqual(code(RequestHead(url: ok, headers: [(name, "x")])), .forbiddenHeader, name)
        }
        var critical = RequestOptions()
        critical.unknown = [(tag: 0x8123, value: [])]
        XCTAssertEqual(code(RequestHead(url: ok, options: critical)), .unknownCriticalOption)
        XCTAssertEqual(try RequestValidator.parse(url: "https://[::1]:8443/p").domain, "[::1]:8443")
        XCTAssertEqual(try RequestValidator.parse(url: "HTTP://User@Example.COM/p").domain, "example.com:80")
    }

    /// What does not fit a field is refused with an error, never cut and never a trap.
    func testEncoderRefusesWhatDoesNotFit() {
        let long = String(repeating: "v", count: 65536)
        let cases: [(String, Message)] = [
            ("a 65,536-byte header value", .requestHead(stream: 1, RequestHead(url: "http://h/", headers: [("X", long)]), endRequest: true)),
            ("65,536 headers", .requestHead(stream: 1, RequestHead(url: "http://h/", headers: Array(repeating: ("X", ""), count: 65536)), endRequest: true)),
            ("65,600 response headers", .responseHead(stream: 1, ResponseHead(status: 200, httpVersion: 11, connectionID: 1, reused: false,
                                                                            headers: Array(repeating: ("X", ""), count: 65600)))),
            ("a 65,536-byte URL", .requestHead(stream: 1, RequestHead(url: "http://h/" + long), endRequest: true)),
            ("a 65,536-byte error message", .error(stream: 1, ReckerError(.internalError, long))),
        ]
        for (name, m) in cases {
            XCTAssertThrowsError(try m.encoded, name) { e in
                XCTAssertEqual((e as? ReckerError)?.code, .malformedFrame, name)
            }
        }
        let edge = Message.requestHead(stream: 1, RequestHead(url: "http://h/", headers: [("X", String(repeating: "v", count: 65535))]), endRequest: true)
        XCTAssertNoThrow(try edge.encoded, "65,535 bytes fit")
    }
}
