import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// The curl parity suite: invocations collected from public scripts (installers, health
/// checks, CI uploads, API wrappers, cookie logins, downloaders, browser "Copy as cURL";
/// Parity/curl-invocations.tsv names each one's source), run in order with the real curl
/// and with `recker` against the same loopback servers, each tool in a directory of its
/// own (later steps read what earlier ones wrote there). Each comes out:
/// - equal: the same exit code, the same stdout (Date headers, the User-Agent's own name
///   and, with -w, timing figures aside) and the same files written (names and bytes);
/// - refused: recker exits 2 saying why, for an option README's "Differences from curl"
///   lists (`refusedOptions` here);
/// - silently different: anything else. There must be none.
final class CLICorpusParityTests: XCTestCase {
    struct Row {
        var id: String
        var kind: String
        var args: [String]
        var notes: String
    }

    /// Options recker refuses, saying why (README, "Differences from curl").
    static let refusedOptions: Set<String> = ["-H Content-Length"]

    /// Rows not run, each with its reason (printed).
    static let skipped: [String: String] = [
        "p075": "its --referer swallows the next option, so \"120\" becomes a URL off loopback (0.0.0.120)",
        "p119": "-X HEAD without -I waits for a body that never comes, in curl as in recker: a hang to the harness's timeout",
    ]

    static func rows() throws -> [Row] {
        let path = TestEnvironment.packageRoot.appendingPathComponent("Tests/reckerdTests/Parity/curl-invocations.tsv")
        let lines = try String(contentsOf: path, encoding: .utf8).split(separator: "\n").dropFirst()
        return try lines.map { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            let args = try JSONSerialization.jsonObject(with: Data(f[2].utf8)) as? [String] ?? []
            return Row(id: f[0], kind: f[1], args: args, notes: f.count > 4 ? f[4] : "")
        }
    }

    /// The files under `dir` (relative names and bytes).
    func files(_ dir: URL) -> [String: Data] {
        var out: [String: Data] = [:]
        let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)
        while let u = e?.nextObject() as? URL {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: u.path, isDirectory: &isDir), !isDir.boolValue, let d = try? Data(contentsOf: u) {
                out[String(u.path.dropFirst(dir.path.count))] = d
            }
        }
        return out
    }

    /// Date headers out, the User-Agent's own name out, and `figures` (a pattern) as F.
    func normal(_ text: String, figures: String?) -> String {
        // Split on the LF byte ("\r\n" is one Character to Swift); CRs stay.
        var lines = Array(text.utf8).split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            .filter { !$0.lowercased().hasPrefix("date: ") }
        lines = lines.map { $0.replacingOccurrences(of: "recker/\(Message.release)", with: "UA").replacingOccurrences(of: "curl/7.88.1", with: "UA") }
        var out = lines.joined(separator: "\n")
        if let figures, let re = try? NSRegularExpression(pattern: figures) {
            out = re.stringByReplacingMatches(in: out, range: NSRange(out.startIndex..., in: out), withTemplate: "F")
        }
        return out
    }

    /// %{json} as curl's fields: reckerd's own (pooled, reused, connection_id, …) left out,
    /// and those that differ run to run or by the tool (times, speeds, ports, the request's
    /// size with its User-Agent, curl_version).
    static func curlJSON(_ text: String) -> String {
        guard let data = text.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return text }
        let volatile = ["curl_version", "recker_version", "local_port", "size_request", "num_connects"]
        let ours = ["connection_id", "pooled", "reused", "may_have_reached_upstream", "time_queue"]
        let kept = object.filter { key, _ in !key.hasPrefix("time_") && !key.hasPrefix("speed_") && !volatile.contains(key) && !ours.contains(key) }
        return (try? JSONSerialization.data(withJSONObject: kept, options: .sortedKeys)).map { String(decoding: $0, as: UTF8.self) } ?? text
    }

    func testPublicInvocationsBehaveAsInCurl() throws {
        let rows = try Self.rows()
        XCTAssertGreaterThanOrEqual(rows.count, 120)
        // Every /size/N the corpus names, as nginx files of N bytes.
        var served = Fixtures.files
        for row in rows {
            for a in row.args {
                guard let r = a.range(of: "/size/") else { continue }
                let n = a[r.upperBound...].prefix { $0.isNumber }
                if let size = Int(n), size <= 8 << 20 { served["size/\(size)"] = Fixtures.bytes(size, seed: UInt64(size)) }
            }
        }
        let nginx = try Nginx(files: served)
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let dirs = [try TestEnvironment.makeTempDir("parity-curl"), try TestEnvironment.makeTempDir("parity-recker")]
        let stdin = Fixtures.bytes(3000, seed: 77)

        var equal: [String] = []
        var refused: [(String, String)] = []
        var different: [(String, String)] = []
        for row in rows {
            if let why = Self.skipped[row.id] {
                print("parity \(row.id): skipped: \(why)")
                continue
            }
            var results: [(TestEnvironment.Result, [String: Data])] = []
            for (n, dir) in dirs.enumerated() {
                func fill(_ s: String) -> String {
                    s.replacingOccurrences(of: "{HTTPS}", with: "https://localhost:\(nginx.httpsPort)")
                        .replacingOccurrences(of: "{HTTP}", with: "http://127.0.0.1:\(nginx.httpPort)")
                        .replacingOccurrences(of: "{ECHO}", with: "http://127.0.0.1:\(server.port)")
                        .replacingOccurrences(of: "{CA}", with: nginx.caFile)
                        .replacingOccurrences(of: "{TMP}", with: dir.path)
                }
                let args = row.args.map(fill)
                try prepareInputs(row, args: args, dir: dir, fill: fill)
                let before = files(dir)
                // A call that hangs (a script's own Content-Length above its body, say) is
                // stopped after 10 s; hanging in both is behaving the same.
                let tool = n == 0 ? CLIRedirectTests.curl : TestEnvironment.binDir.appendingPathComponent("recker").path
                let r = (try? TestEnvironment.run(tool, (n == 0 ? [] : ["--socket", daemon.socketPath]) + args, stdin: stdin,
                                                  directory: dir, timeout: 10))
                    ?? TestEnvironment.Result(status: -1, stdout: Data(), stderr: "did not end within 10 s")
                // What this row wrote or changed (earlier rows' files compared when written).
                let after = files(dir)
                var changed = after.filter { before[$0.key] != $0.value }
                for gone in Set(before.keys).subtracting(after.keys) { changed[gone] = Data("(removed)".utf8) }
                results.append((r, changed))
            }
            let (c, cFiles) = results[0]
            let (r, rFiles) = results[1]
            // The echo of request headers: the same set, in whatever order each sent them.
            // With -w, timing figures differ run to run (and speed_* as whole numbers).
            let format = zip(row.args, row.args.dropFirst()).first { $0.0 == "-w" || $0.0 == "--write-out" || ($0.0.hasPrefix("-") && !$0.0.hasPrefix("--") && $0.0.hasSuffix("w")) }?.1
            let figures = format.map { $0.contains("speed_") ? "[0-9]+(\\.[0-9]+)?" : "[0-9]+\\.[0-9]+" }
            // -F: each tool draws its own multipart boundary, so the digest's hash differs;
            // the method and length (same boundary length) must not.
            let multipart = row.args.contains { $0 == "-F" || $0 == "--form" }
            // The echo of request headers: the same set, in whatever order each sent them;
            // Connection and Keep-Alive are hop-by-hop (RFC 9110 §7.6.1), the connection's
            // own, which reckerd keeps (README, "Differences from curl").
            let headerEcho = row.args.contains { $0.contains("{ECHO}/headers") }
            func normText(_ text: String) -> String {
                var n = self.normal(format?.contains("%{json}") == true ? Self.curlJSON(text) : text, figures: figures)
                if multipart, let re = try? NSRegularExpression(pattern: " [0-9a-f]{1,16}$", options: .anchorsMatchLines) {
                    n = re.stringByReplacingMatches(in: n, range: NSRange(n.startIndex..., in: n), withTemplate: " HASH")
                }
                if headerEcho {
                    // (The echo's own Content-Length follows those and the User-Agent's length.)
                    // (Split on the LF byte: "\r\n" is one Character to Swift.)
                    n = Array(n.utf8).split(separator: 0x0A, omittingEmptySubsequences: false)
                        .map { String(decoding: $0.last == 0x0D ? $0.dropLast() : $0, as: UTF8.self) }
                        .filter {
                            let l = $0.lowercased()
                            return !l.hasPrefix("connection:") && !l.hasPrefix("keep-alive:") && !l.hasPrefix("content-length:")
                        }.sorted().joined(separator: "\n")
                }
                return n
            }
            func normFiles(_ files: [String: Data]) -> [String: String] {
                files.mapValues { normText(String(decoding: $0, as: UTF8.self)) }
            }
            if r.status == c.status && normText(r.text) == normText(c.text) && normFiles(rFiles) == normFiles(cFiles) {
                equal.append(row.id)
            } else if r.status == 2 && c.status != 2, let option = Self.refusedOptions.first(where: { r.stderr.contains("option \($0)") }) {
                refused.append((row.id, option))
            } else {
                var why = "exit \(r.status) vs curl's \(c.status)"
                if normText(r.text) != normText(c.text) { why += "; stdout differs" }
                if normFiles(rFiles) != normFiles(cFiles) { why += "; files differ (\(Set(rFiles.keys).symmetricDifference(cFiles.keys).sorted()))" }
                if normText(r.text) != normText(c.text) { why += "\n  curl:   \(normText(c.text).prefix(400).debugDescription)\n  recker: \(normText(r.text).prefix(400).debugDescription)" }
                for (name, text) in normFiles(rFiles) where normFiles(cFiles)[name] != text {
                    why += "\n  \(name) curl:   \((normFiles(cFiles)[name] ?? "(none)").prefix(300).debugDescription)\n  \(name) recker: \(text.prefix(300).debugDescription)"
                }
                different.append((row.id, "\(why): \(row.args.joined(separator: " ")) — \(r.stderr.prefix(200))"))
            }
        }
        let run = equal.count + refused.count + different.count
        print("parity: \(equal.count) of \(run) equal (\(equal.count * 100 / max(run, 1)) %), \(refused.count) refused with a reason, \(different.count) different, \(Self.skipped.count) skipped")
        for (id, why) in different { print("parity \(id): DIFFERENT: \(why)") }
        XCTAssertEqual(different.map(\.0), [], "every invocation behaves as in curl or is refused saying why")
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// Files a row reads that no earlier row wrote: what its notes describe, else 2 KB of text.
    func prepareInputs(_ row: Row, args: [String], dir: URL, fill: (String) -> String) throws {
        var reads: [String] = []
        for (i, a) in args.enumerated() {
            if let at = a.firstIndex(of: "@"), a[a.index(after: at)...].hasPrefix(dir.path) {
                reads.append(String(a[a.index(after: at)...].prefix { $0 != ";" }))
            }
            if i > 0, ["-T", "--upload-file", "-K", "--config", "--netrc-file"].contains(args[i - 1]), a.hasPrefix(dir.path) {
                reads.append(a)
            }
        }
        for path in reads where !FileManager.default.fileExists(atPath: path) {
            let content: String
            if path.contains("netrc") {
                content = "default login hari password s3cret\n"
            } else if path.contains("header") {
                content = "Authorization: token TOKEN123\n"
            } else if row.id == "p102" {
                content = fill("# comment\nurl =   \"{HTTP}/hello.txt\"\n-D  \"{TMP}/headers.txt\"\n-v\n-o /dev/null\n-s\n")
            } else if path.hasSuffix(".json") {
                content = "{\"name\":\"reckerd\",\"items\":[1,2,3]}\n"
            } else {
                content = String(repeating: "line of text for the upload\n", count: 73)
            }
            try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(toFile: path, atomically: true, encoding: .utf8)
        }
    }
}
