import XCTest
@testable import ReckerProtocol

/// The replay policy and the door's decisions that need no daemon.
final class RequestValidatorTests: XCTestCase {
    func testResendPolicyIsExact() {
        func head(_ method: String, _ headers: [(name: String, value: String)] = []) -> RequestHead {
            RequestHead(method: method, url: "http://h/", headers: headers)
        }
        for m in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] { XCTAssertTrue(RequestValidator.mayResend(head(m)), m) }
        for m in ["POST", "PATCH", "LOCK", "put", "Delete", "get"] {
            XCTAssertFalse(RequestValidator.mayResend(head(m)), "\(m): methods are case-sensitive")
        }
        XCTAssertTrue(RequestValidator.mayResend(head("POST", [("idempotency-key", "k1")])))
        XCTAssertFalse(RequestValidator.mayResend(head("POST", [("Idempotency-Key", "")])), "an empty key keys nothing")
        XCTAssertFalse(RequestValidator.mayResend(head("POST", [("Idempotency-Key", " \t")])))
        XCTAssertFalse(RequestValidator.isSafeMethod("get"))
    }

    func testAHostWithAColonNeedsBrackets() {
        XCTAssertThrowsError(try RequestValidator.parse(url: "http://127.0.0.1:20002:20003/"))
        XCTAssertThrowsError(try RequestValidator.parse(url: "http://::1/"))
        XCTAssertNoThrow(try RequestValidator.parse(url: "http://[::1]:8080/"))
    }

    func testAPercentEncodedHostIsRefused() {
        for url in ["http://127.0.0.1%00.evil/", "http://ex%61mple.com/", "https://%2e%2e/"] {
            XCTAssertThrowsError(try RequestValidator.parse(url: url), url) { e in
                XCTAssertEqual((e as? ReckerError)?.code, .invalidURL, url)
            }
        }
        XCTAssertNoThrow(try RequestValidator.parse(url: "http://example.com/a%20b?q=%00"), "percent-encoding in the path and query is the upstream's")
    }

    func testCredentialsInURLs() {
        XCTAssertTrue(RequestValidator.hasCredentials("http://u:p@h/"))
        XCTAssertTrue(RequestValidator.hasCredentials("https://u@h:8443/x"))
        XCTAssertFalse(RequestValidator.hasCredentials("http://h/a@b"), "an @ in the path is not userinfo")
        XCTAssertFalse(RequestValidator.hasCredentials("http://h/?q=a@b"))
    }
}
