import ReckerSession
import XCTest

/// The HTTP front's request reader without a socket: bytes in (whole, and one byte at a
/// time, which must read the same), events out.
final class HTTPRequestReaderTests: XCTestCase {
    enum Outcome: Equatable {
        case head(method: String, target: String, version: String, headers: [String], keepAlive: Bool)
        case body(String)
        case end
        case refused(UInt16, String)
    }

    /// Everything `text` reads to, fed in pieces of `step` bytes (0: all at once); body
    /// pieces joined. Also returns how many bytes were taken.
    func read(_ text: String, step: Int = 0, limit: Int = 16384) -> (outcomes: [Outcome], taken: Int) {
        let bytes = Array(text.utf8)
        var reader = HTTPRequestReader(headLimit: limit)
        var out: [Outcome] = []
        var body = ""
        var start = 0
        var available = step == 0 ? bytes.count : min(step, bytes.count)
        var turns = 0
        while turns < 100_000 {
            turns += 1
            let (taken, event) = reader.read(bytes[start ..< available])
            start += taken
            guard let event else {
                if available == bytes.count && !reader.hasEventWithoutInput { break }
                available = min(bytes.count, available + max(step, 1))
                continue
            }
            switch event {
            case .begun:
                break
            case .head(let r):
                out.append(.head(method: r.method, target: r.target, version: "\(r.major).\(r.minor)",
                                 headers: r.headers.map { "\($0.name)=\($0.value)" }, keepAlive: r.keepAlive))
            case .body(let piece):
                body += String(decoding: piece, as: UTF8.self)
            case .end:
                if !body.isEmpty { out.append(.body(body)) }
                body = ""
                out.append(.end)
            case .refused(let r):
                out.append(.refused(r.status, r.message))
                return (out, start)
            }
        }
        return (out, start)
    }

    /// Reads `text` whole and byte by byte, asserts both agree, and returns the outcomes.
    func outcomes(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [Outcome] {
        let whole = read(text).outcomes
        XCTAssertEqual(read(text, step: 1).outcomes, whole, "byte by byte", file: file, line: line)
        XCTAssertEqual(read(text, step: 7).outcomes, whole, "7 bytes at a time", file: file, line: line)
        return whole
    }

    func refusal(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> UInt16? {
        guard case .refused(let status, _)? = outcomes(text, file: file, line: line).last else { return nil }
        return status
    }

    func testAnyTokenIsAMethodAndIsKeptAsWritten() {
        for method in ["QUERY", "LABEL", "VERSION-CONTROL", "ORDERPATCH", "UPDATEREDIRECTREF", "BREW", "X-CUSTOM",
                       String(repeating: "M", count: 64), "get", "M!#$%&'*+-.^_`|~9"] {
            XCTAssertEqual(outcomes("\(method) /x HTTP/1.1\r\nHost: a\r\n\r\n"),
                           [.head(method: method, target: "/x", version: "1.1", headers: ["Host=a"], keepAlive: true), .end], method)
        }
        for method in ["GE(T", "GE\"T", "G@T", "GE/T", "GE,T", "GE;T", "GE{T", "G\u{7F}T", "GÉT"] {
            XCTAssertEqual(refusal("\(method) /x HTTP/1.1\r\nHost: a\r\n\r\n"), 400, method)
        }
    }

    func testTheRequestLineIsExact() {
        XCTAssertEqual(outcomes("\r\n\r\nGET / HTTP/1.0\r\n\r\n"),
                       [.head(method: "GET", target: "/", version: "1.0", headers: [], keepAlive: false), .end],
                       "empty lines before a request line are ignored (RFC 9112 §2.2)")
        XCTAssertEqual(outcomes("GET / HTTP/1.2\r\n\r\n").first,
                       .head(method: "GET", target: "/", version: "1.2", headers: [], keepAlive: true), "a later minor version is read")
        for line in ["GET  / HTTP/1.1", "GET / HTTP/1.1 ", " GET / HTTP/1.1", "GET\t/ HTTP/1.1", "GET / HXYZ/1.1", "GET / HTTP/1.10",
                     "GET / HTTP/1", "GET / http/1.1", "GET / HTTP/1.x", "GET /a b HTTP/1.1", "GET / ", "GET", "GET /\u{1}x HTTP/1.1",
                     "GET /é HTTP/1.1", "GET /x\u{7F} HTTP/1.1"] {
            XCTAssertEqual(refusal("\(line)\r\nHost: a\r\n\r\n"), 400, line.debugDescription)
        }
    }

    func testLineEndsAreCRLFAndFoldsAreRefused() {
        XCTAssertEqual(refusal("GET / HTTP/1.1\nHost: a\r\n\r\n"), 400)
        XCTAssertEqual(refusal("GET / HTTP/1.1\r\nHost: a\n\r\n"), 400)
        XCTAssertEqual(refusal("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400)
        XCTAssertEqual(refusal("GET / HTTP/1.1\r\nHost: a\r\r\n"), 400)
        XCTAssertEqual(refusal("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n"), 400)
        XCTAssertEqual(refusal("GET / HTTP/1.1\r\nHost: a\r\n\tX: 2\r\n\r\n"), 400)
    }

    func testHeaderLines() {
        XCTAssertEqual(outcomes("GET / HTTP/1.1\r\nHost:a\r\nX-E:\r\nX-S: \t v a l \t\r\nX-O: caf\u{E9}\r\n\r\n").first,
                       .head(method: "GET", target: "/", version: "1.1", headers: ["Host=a", "X-E=", "X-S=v a l", "X-O=café"], keepAlive: true))
        for line in ["X-A : 1", "X-A\t: 1", ": 1", "X A: 1", "X-A", "X(A): 1", "X-A: 1\u{0}", "X-A: a\u{1B}b", "X-A: \u{7F}", "Host: a\u{B}"] {
            XCTAssertEqual(refusal("GET / HTTP/1.1\r\nHost: a\r\n\(line)\r\n\r\n"), 400, line.debugDescription)
        }
    }

    func testKeepAliveFollowsTheVersionAndConnection() {
        func keepAlive(_ text: String) -> Bool? {
            guard case .head(_, _, _, _, let k)? = outcomes(text).first else { return nil }
            return k
        }
        XCTAssertEqual(keepAlive("GET / HTTP/1.1\r\n\r\n"), true)
        XCTAssertEqual(keepAlive("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"), false)
        XCTAssertEqual(keepAlive("GET / HTTP/1.1\r\nConnection: x, close\r\n\r\n"), false)
        XCTAssertEqual(keepAlive("GET / HTTP/1.0\r\n\r\n"), false)
        XCTAssertEqual(keepAlive("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), true)
    }

    func testContentLengthFramesTheBodyAndTheNextRequestFollows() {
        let text = "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        XCTAssertEqual(outcomes(text), [
            .head(method: "POST", target: "/a", version: "1.1", headers: ["Content-Length=5"], keepAlive: true), .body("hello"), .end,
            .head(method: "GET", target: "/b", version: "1.1", headers: ["Content-Length=0"], keepAlive: true), .end,
        ])
        XCTAssertEqual(read(text).taken, text.utf8.count)
        // A head without a body ends at its blank line: nothing after it is taken yet.
        var reader = HTTPRequestReader(headLimit: 1000)
        _ = reader.read(ArraySlice("GET / HTTP/1.1\r\n\r\nXYZ".utf8))
        XCTAssertEqual(reader.read(ArraySlice("GET / HTTP/1.1\r\n\r\nXYZ".utf8)).taken, 18)
        XCTAssertTrue(reader.hasEventWithoutInput)
        for length in ["+5", "0x5", "5 5", "5, 5", "-1", "", "5a", "99999999999999999999", "1e3"] {
            XCTAssertEqual(refusal("POST / HTTP/1.1\r\nContent-Length: \(length)\r\n\r\nhello"), 400, length)
        }
        XCTAssertEqual(refusal("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"), 400)
        XCTAssertEqual(refusal("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 56\r\n\r\nhello"), 400)
        XCTAssertEqual(outcomes("POST / HTTP/1.1\r\nContent-Length: 0000000000000000003\r\n\r\nabc").dropFirst(), [.body("abc"), .end])
    }

    func testTransferEncodingMustBeExactlyChunkedAndNeverBesideALength() {
        XCTAssertEqual(refusal("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400)
        XCTAssertEqual(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"), 400)
        for coding in ["gzip", "gzip, chunked", "chunked, gzip", "chunked, chunked", "identity", "xchunked", "chunked;q=1"] {
            XCTAssertEqual(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: \(coding)\r\n\r\n0\r\n\r\n"), 400, coding)
        }
        XCTAssertEqual(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400)
        XCTAssertEqual(outcomes("POST / HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n").last, .end)
    }

    func testChunkedBodiesAreReadStrictly() {
        let good = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nA;name=\"v\";x\r\n 0123456\t8\r\n00\r\nX-T: 1\r\nX-U:2\r\n\r\nGET / HTTP/1.1\r\n\r\n"
        let read = outcomes(good)
        XCTAssertEqual(Array(read.dropFirst().prefix(2)), [.body("hello 0123456\t8"), .end], "trailers read and dropped")
        XCTAssertEqual(read.last, .end)
        XCTAssertEqual(read.count, 5)
        XCTAssertEqual(outcomes("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab").dropFirst(), [],
                       "16 hex digits are a size; the body has only begun")
        for chunks in ["+5\r\nhello\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n", " 5\r\nhello\r\n0\r\n\r\n", "5 \r\nhello\r\n0\r\n\r\n",
                       "5\r\nhelloXY0\r\n\r\n", "5\r\nhello\rZ0\r\n\r\n", "5\r\nhello\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n",
                       "0\rZ\r\n", "0\r\n\rZ", "g\r\n", ";x\r\n", "10000000000000000\r\n", "5;a\u{1}\r\nhello\r\n0\r\n\r\n",
                       "0\r\nX-T 1\r\n\r\n", "0\r\nX-T: 1\r\n folded\r\n\r\n", "0\r\n: v\r\n\r\n",
                       "\(String(repeating: "0", count: 4100))1\r\n"] {
            XCTAssertEqual(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks), 400, chunks.debugDescription)
        }
    }

    func testHeadsAndTrailersAreBoundedBeforeTheyEnd() {
        let long = "GET / HTTP/1.1\r\nX: \(String(repeating: "a", count: 200))\r\n\r\n"
        XCTAssertEqual(read(long, limit: 100).outcomes, [.refused(431, "the request head is longer than 100 bytes (limits.maxHeaderBytes, limits.maxHeaders)")])
        XCTAssertEqual(read(long, limit: 100).taken, 101, "refused at the first byte past the limit, without waiting for the end")
        XCTAssertEqual(read("GET / HTTP/1.1\r\n\(String(repeating: "\r\n", count: 0))", limit: 100).outcomes, [], "a head in progress")
        let trailers = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: \(String(repeating: "a", count: 200))\r\n\r\n"
        XCTAssertEqual(read(trailers, limit: 100).outcomes.last, .refused(431, "the request's trailers are longer than 100 bytes"))
        XCTAssertEqual(read(String(repeating: "\r\n", count: 60), limit: 100).outcomes.last, .refused(431, "the request head is longer than 100 bytes (limits.maxHeaderBytes, limits.maxHeaders)"),
                       "empty lines count towards the limit")
    }

    func testUpgradeNeedsBothHeaders() {
        var reader = HTTPRequestReader(headLimit: 1000)
        _ = reader.read(ArraySlice("GET / HTTP/1.1\r\n\r\n".utf8))
        guard case (_, .head(let plain)?) = reader.read(ArraySlice("GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n".utf8)) else { return XCTFail() }
        XCTAssertFalse(plain.upgrade)
        var other = HTTPRequestReader(headLimit: 1000)
        _ = other.read(ArraySlice("G".utf8))
        guard case (_, .head(let up)?) = other.read(ArraySlice("GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n".utf8)) else { return XCTFail() }
        XCTAssertTrue(up.upgrade)
    }

    func testAfterARefusalNothingMoreIsRead() {
        var reader = HTTPRequestReader(headLimit: 1000)
        _ = reader.read(ArraySlice("G".utf8))
        guard case (_, .refused?) = reader.read(ArraySlice("GET / HTTP/1.1\nGET / HTTP/1.1\r\n\r\n".utf8)) else { return XCTFail() }
        let after = reader.read(ArraySlice("GET / HTTP/1.1\r\n\r\n".utf8))
        XCTAssertEqual(after.taken, 0)
        XCTAssertNil(after.event)
    }
}
