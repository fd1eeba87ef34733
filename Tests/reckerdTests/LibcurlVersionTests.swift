import Foundation
import ReckerTestSupport
import XCTest

/// The libcurl the daemon runs on is named everywhere an operator looks, and is the one
/// linked into the binary, whatever the host has (docs/LIBCURL.md).
final class LibcurlVersionTests: XCTestCase {
    func testVersionStatsAndBuildInfoNameTheLibcurlInUse() throws {
        let bin = TestEnvironment.binDir.appendingPathComponent("reckerd").path
        let version = try TestEnvironment.run(bin, ["--version"])
        XCTAssertEqual(version.status, 0)
        let match = try XCTUnwrap(version.text.range(of: #"libcurl 8\.14\.[0-9]+"#, options: .regularExpression), version.text)
        let libcurl = String(version.text[match].dropFirst("libcurl ".count))

        let daemon = try DaemonProcess()
        let stats = try daemon.stats()
        XCTAssertEqual(stats["libcurl"] as? String, libcurl)
        XCTAssertNotNil(stats["version"] as? String)
        let prometheus = try daemon.recker(["stats", "--prometheus"]).text
        XCTAssertTrue(prometheus.contains("# TYPE reckerd_build_info gauge"), prometheus)
        XCTAssertTrue(prometheus.contains(#"libcurl="\#(libcurl)"} 1"#), prometheus)
        let table = try daemon.recker(["stats"]).text
        XCTAssertTrue(table.hasPrefix("reckerd ") && table.contains("on libcurl \(libcurl)"), table)
    }

    /// The binaries carry libcurl themselves: none loads the host's libcurl.so (Debian 12's
    /// 7.88.1, which crashes on an obs-folded header).
    func testNoBinaryLoadsTheHostsLibcurl() throws {
        for name in ["reckerd", "recker-direct"] {
            let path = TestEnvironment.binDir.appendingPathComponent(name).path
            let ldd = try TestEnvironment.run("/usr/bin/ldd", [path])
            XCTAssertEqual(ldd.status, 0, ldd.stderr)
            XCTAssertFalse(ldd.text.contains("libcurl"), "\(name) links the host's libcurl: \(ldd.text)")
            XCTAssertTrue(ldd.text.contains("libnghttp2.so.14"), "\(name): libcurl's own dependencies are Debian 12's shared libraries")
        }
    }

    /// The side-by-side comparisons with the curl command (CLIRedirectTests, CLIWriteOutTests,
    /// the HTTP front's) are made against Debian 12's curl 7.88.1, whose behaviour they
    /// were written from; another curl would move the reference, so the pin is checked.
    func testComparisonsUseThePinnedCurl() throws {
        let curl = try TestEnvironment.run(CLIRedirectTests.curl, ["--version"])
        XCTAssertTrue(curl.text.hasPrefix("curl 7.88.1 "), "the reference curl changed: \(curl.text.prefix(80))")
    }
}
