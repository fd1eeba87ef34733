import ReckerPool
import XCTest

/// reckerd names the libcurl it runs on, and refuses to start on one older than it was
/// tested with (docs/LIBCURL.md).
final class LibcurlTests: XCTestCase {
    func testTheLinkedLibcurlIsTheOneTestedWith() {
        XCTAssertTrue(Libcurl.version.hasPrefix("8.14."), "the engine runs on libcurl \(Libcurl.version)")
        XCTAssertEqual(Libcurl.versionNumber >> 8, 0x080E)
        XCTAssertNil(Libcurl.refusal)
    }

    func testOlderLibrariesAreRefusedNamingTheVersionAndTheFix() throws {
        let refusal = try XCTUnwrap(Libcurl.refusal(versionNumber: 0x075801, version: "7.88.1"))
        XCTAssertTrue(refusal.contains("libcurl 7.88.1 is too old"), refusal)
        XCTAssertTrue(refusal.contains("8.14.0 or later"), refusal)
        XCTAssertTrue(refusal.contains("bookworm-backports"), refusal)
        XCTAssertNotNil(Libcurl.refusal(versionNumber: 0x080DFF, version: "8.13.255"), "one below the minimum")
        XCTAssertNil(Libcurl.refusal(versionNumber: 0x080E00, version: "8.14.0"), "the minimum")
        XCTAssertNil(Libcurl.refusal(versionNumber: 0x090000, version: "9.0.0"))
    }
}
