@testable import ReckerCLI
import XCTest

/// recker's cookie engine without a network: the rules curl 7.88 keeps beside RFC 6265's.
final class CookieJarTests: XCTestCase {
    let site = URLText.parse("http://example.com/a/b")!

    func testPathsPrefixesAndTheCap() {
        let jar = CookieJar(now: { 1_000_000 })
        // A trailing slash is not part of an explicit path (curl's sanitize_cookie_path).
        jar.receive("p=1; Path=/a/", from: site)
        XCTAssertEqual(jar.header(for: URLText.parse("http://example.com/a")!), "p=1")
        // __Secure- needs Secure (and a secure origin: loopback or https); __Host- also Path=/
        // and no Domain.
        jar.receive("__Secure-a=1", from: site)
        jar.receive("__Host-b=1; Secure; Path=/", from: URLText.parse("https://example.com/")!)
        jar.receive("__Host-c=1; Secure; Path=/; Domain=example.com", from: URLText.parse("https://example.com/")!)
        jar.receive("__Host-d=1; Secure", from: URLText.parse("https://example.com/x/y")!)
        XCTAssertEqual(jar.cookies.map(\.name), ["p", "__Host-b"])
        // At most 150 cookies in one request.
        for i in 0 ..< 200 { jar.receive("c\(i)=\(i); Path=/", from: site) }
        XCTAssertEqual(jar.header(for: site)?.split(separator: ";").count, 150)
    }

    func testDatesAsCurlTakesThem() {
        XCTAssertEqual(HTTPDate.parse("Wed, 15 Nov 2023 00:00:00 GMT"), 1_700_006_400)
        XCTAssertEqual(HTTPDate.parse("15 Nov 2023"), 1_700_006_400)
        XCTAssertEqual(HTTPDate.parse("20231115 00:00:00"), 1_700_006_400)
        XCTAssertEqual(HTTPDate.parse("15 Nov 2023 01:00:00 +0100"), 1_700_006_400)
        XCTAssertEqual(HTTPDate.format(1_700_006_400), "Wed, 15 Nov 2023 00:00:00 GMT")
        XCTAssertNil(HTTPDate.parse("not a date"))
    }
}
