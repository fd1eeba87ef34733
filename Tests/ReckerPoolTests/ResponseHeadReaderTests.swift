import ReckerPool
import XCTest

/// The response head rules on their own (RFC 9112 §2.2, §4, §5.2, §6.3), line by line as
/// libcurl hands the lines over.
final class ResponseHeadReaderTests: XCTestCase {
    private func read(_ lines: [String]) -> (ResponseHeadReader, [ResponseHeadReader.Verdict]) {
        var reader = ResponseHeadReader(maxCount: 10, maxBytes: 200)
        let verdicts = lines.map { reader.read(Array(($0 + "\r\n").utf8)) }
        return (reader, verdicts)
    }

    private func refusal(_ lines: [String]) -> String? {
        let (_, verdicts) = read(lines)
        for case .refuse(let why) in verdicts { return why }
        return nil
    }

    func testFoldsAreJoinedWithOneSpaceOrRefusedWhereTheyFrameTheBody() {
        let (r, _) = read(["HTTP/1.1 200 OK", " ignored", "X-A: 1", " two", "\tthree  ", " ", "X-B: b", ""])
        XCTAssertEqual(r.headers.map(\.name), ["X-A", "X-B"])
        XCTAssertEqual(r.headers.map(\.value), ["1 two three", "b"])
        XCTAssertTrue(r.complete)
        XCTAssertEqual(refusal(["HTTP/1.1 200 OK", "Transfer-Encoding:", " chunked"])?.contains("folded its Transfer-Encoding"), true)
        XCTAssertEqual(refusal(["HTTP/1.1 200 OK", "content-length: 5", " 7"])?.contains("folded its content-length"), true)
    }

    func testControlBytesBecomeSpacesAndNamesThatAreNotTokensAreDropped() {
        let (r, _) = read(["HTTP/1.1 200 OK", "X-A: a\rContent-Length: 10", "X-B : 1", ": empty", "X(C): 1", "X-D:\u{1B}[1m ok\u{7F}", ""])
        XCTAssertEqual(r.headers.map(\.name), ["X-A", "X-D"])
        XCTAssertEqual(r.headers.map(\.value), ["a Content-Length: 10", "[1m ok"])
    }

    func testLengthsMustBeNumbersThatAgree() {
        for bad in ["0x5", "+5", "-5", "5 5", "", "99999999999999999999999", "5,", "abc"] {
            XCTAssertEqual(refusal(["HTTP/1.1 200 OK", "Content-Length: \(bad)"])?.contains("not a number"), true, bad)
        }
        XCTAssertEqual(refusal(["HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 6"])?.contains("conflicting"), true)
        XCTAssertEqual(refusal(["HTTP/1.1 200 OK", "Content-Length: 5, 6"])?.contains("conflicting"), true)
        XCTAssertNil(refusal(["HTTP/1.1 200 OK", "Content-Length: 5, 5", "Content-Length: 5", ""]))
        XCTAssertNil(refusal(["HTTP/1.1 200 OK", "Content-Length: 18446744073709551615", ""]), "UInt64.max")
        XCTAssertEqual(refusal(["HTTP/1.1 200 OK", "Content-Length: 18446744073709551616"])?.contains("not a number"), true, "max + 1")
        XCTAssertEqual(refusal(["HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Content-Length: 5"])?.contains("both"), true)
    }

    func testStatusLinesMustBeHTTPs() {
        for good in ["HTTP/1.1 200 OK", "HTTP/1.0 404", "HTTP/2 200 ", "HTTP/1.1 599 Odd but allowed", "HTTP/1.1 200 "] {
            let (r, verdicts) = read([good])
            XCTAssertEqual(verdicts, [.status], good)
            XCTAssertFalse(r.complete)
        }
        for bad in ["HTTP/1.1 65736 Big", "HTTP/1.1 2000 OK", "HTTP/1.1 200x OK", "HTTP/1.1  200", "HTTP/11.1 200", "HTTP/1. 200", "HTTP/1.1 20"] {
            XCTAssertEqual(refusal([bad])?.contains("status line"), true, bad)
        }
        let (r, _) = read(["HTTP/1.1 200 It\u{1B}s fine", ""])
        XCTAssertEqual(r.reason, "It s fine")
    }

    func testEachHeadStartsAfreshAndTrailersAreNotPassedOn() {
        let (r, verdicts) = read(["HTTP/1.1 103 Early Hints", "Link: </a>", "", "HTTP/1.1 200 OK", "X-A: 1", "", "X-Trailer: t"])
        XCTAssertEqual(verdicts.filter { $0 == .status }.count, 2)
        XCTAssertEqual(r.headers.map(\.name), ["X-A"])
        XCTAssertTrue(r.complete)
    }

    func testLimitsAtTheirEdge() {
        var r = ResponseHeadReader(maxCount: 2, maxBytes: 1000)
        XCTAssertEqual(r.read(Array("HTTP/1.1 200 OK\r\n".utf8)), .status)
        XCTAssertEqual(r.read(Array("A: 1\r\n".utf8)), .ok)
        XCTAssertEqual(r.read(Array("B: 2\r\n".utf8)), .ok)
        guard case .refuse(let why) = r.read(Array("C: 3\r\n".utf8)) else { return XCTFail("a third header passed a limit of 2") }
        XCTAssertTrue(why.contains("limits.maxHeaders"))
        var b = ResponseHeadReader(maxCount: 10, maxBytes: 10)
        _ = b.read(Array("HTTP/1.1 200 OK\r\n".utf8))
        XCTAssertEqual(b.read(Array("Abcde: 12345\r\n".utf8)), .ok, "10 bytes: at the limit")
        guard case .refuse(let bytes) = b.read(Array("B: \r\n".utf8)) else { return XCTFail("11 bytes passed a limit of 10") }
        XCTAssertTrue(bytes.contains("limits.maxHeaderBytes"))
    }
}
