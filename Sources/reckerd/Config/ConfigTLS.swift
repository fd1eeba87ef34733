import Glibc
import Synchronization

/// The CA certificates the daemon trusts, checked when the config loads (at start and on
/// every reload), so a typo in `tls.caFile` stops the start or the reload instead of
/// failing each request.
enum ConfigTLS {
    /// Where distributions keep the system's CA bundle (PEM), in the order tried when
    /// `SSL_CERT_FILE` does not name one: Debian and Ubuntu, Fedora and RHEL, openSUSE,
    /// Alpine and Arch.
    static let systemBundles = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ]

    /// A CA bundle is read whole; a system bundle is about 200 KiB.
    static let maxBundleBytes = 16 << 20

    /// Why a file is no usable CA bundle, in words.
    struct Problem: Error {
        var description: String
    }

    /// The PEM in `path`, checked to hold certificates and nothing that is not one.
    static func bundle(_ path: String) throws(Problem) -> [UInt8] {
        let bytes: [UInt8]
        do { bytes = try ConfigFile.read(path, limit: maxBundleBytes) } catch {
            throw Problem(description: "\(path): \(error)")
        }
        do { _ = try certificates(inPEM: bytes) } catch {
            throw Problem(description: "\(path): \(error.description)")
        }
        return bytes
    }

    /// Where the system's bundle is: the first that exists of `$SSL_CERT_FILE` (OpenSSL's
    /// own override) and `systemBundles`; nil when there is none (libcurl then uses what it
    /// was built with).
    static func systemBundlePath() -> String? {
        let named = getenv("SSL_CERT_FILE").map { String(cString: $0) }
        return ([named].compactMap { $0 } + systemBundles).first { !$0.isEmpty && access($0, F_OK) == 0 }
    }

    /// The system's bundle, read and checked (`systemBundlePath`).
    static func systemBundle() throws(Problem) -> [UInt8] {
        guard let path = systemBundlePath() else {
            throw Problem(description: "no system CA bundle found (looked at \(systemBundles.joined(separator: ", ")))")
        }
        return try bundle(path)
    }

    /// One bundle of `base` followed by each of `extra`: what libcurl reads when CAs are
    /// added to the system's rather than put in its place.
    static func combined(_ base: [UInt8], _ extra: [[UInt8]]) -> [UInt8] {
        var pem = base
        for b in extra {
            if pem.last != UInt8(ascii: "\n") { pem.append(UInt8(ascii: "\n")) }
            pem += b
        }
        return pem
    }

    /// Combined bundles written so far, newest last: each an unnamed file held open, read by
    /// libcurl through `/proc/self/fd/N`.
    private static let written = Mutex<[(pem: [UInt8], fd: Int32)]>([])
    /// Bundles kept open: the one in force, and older ones for transfers that started under
    /// an older config (or a newer one that a reload loaded and then refused).
    static let keptBundles = 8

    /// The path libcurl is given for `pem`, a bundle written to an unnamed file in
    /// `directory`. A file, not a blob in memory (`CURLOPT_CAINFO_BLOB`): libcurl parses a
    /// file's certificates once for all connections, but a blob's again, and copies it, for
    /// every connection (with the system's CAs and 100 warm TLS connections, 45 MB of RSS
    /// against 166 MB). The same bundle again (a reload that changed no CA) gets the same
    /// path, so warm connections stay reusable; a new one gets a descriptor number never used
    /// before, so libcurl's cache, keyed by path, can never serve an older bundle for it.
    static func install(_ pem: [UInt8], directory: String) throws(Problem) -> String {
        let result: Result<Int32, Problem> = written.withLock { written in
            if let i = written.lastIndex(where: { $0.pem == pem }) {
                // Most recently used last: the bundles closed first are those longest unused.
                let same = written.remove(at: i)
                written.append(same)
                return .success(same.fd)
            }
            var template = Array("\(directory)/reckerd-ca-XXXXXX".utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else {
                return .failure(Problem(description: "cannot write the combined bundle in \(directory): \(String(cString: strerror(errno)))"))
            }
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
            defer { close(fd) }
            var done = 0
            while done < pem.count {
                let n = pem.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return .failure(Problem(description: "cannot write the combined bundle in \(directory): \(String(cString: strerror(errno)))")) }
                done += n
            }
            let unique = fcntl(fd, F_DUPFD_CLOEXEC, (written.map(\.fd).max() ?? 2) + 1)
            guard unique >= 0 else { return .failure(Problem(description: "no descriptor for the combined bundle: \(String(cString: strerror(errno)))")) }
            written.append((pem, unique))
            while written.count > keptBundles { close(written.removeFirst().fd) }
            return .success(unique)
        }
        return "/proc/self/fd/\(try result.get())"
    }

    /// The number of certificates in a PEM bundle. Refuses a bundle with none, a block that
    /// is not a certificate (a private key, say), an unterminated block or one whose content
    /// is not a DER certificate; text between blocks (comments) is allowed, as OpenSSL does.
    static func certificates(inPEM bytes: [UInt8]) throws(Problem) -> Int {
        if bytes.first == 0x30 {
            throw Problem(description: "looks like a DER (binary) certificate, not PEM; convert it with `openssl x509 -inform der -in FILE -out FILE.pem`")
        }
        var count = 0
        var block: (label: String, line: Int, base64: [UInt8])?
        var lineNumber = 0
        for raw in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = raw[...]
            while let last = line.last, last == UInt8(ascii: "\r") || last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") {
                line = line.dropLast()
            }
            let text = String(decoding: line, as: UTF8.self)
            if let open = block {
                if text.hasPrefix("-----END ") {
                    guard text == "-----END \(open.label)-----" else {
                        throw Problem(description: "the \(open.label) block of line \(open.line) ends with \(text)")
                    }
                    guard let der = Base64.decode(open.base64) else {
                        throw Problem(description: "the \(open.label) block of line \(open.line) is not valid base64")
                    }
                    guard isCertificate(der) else {
                        throw Problem(description: "the \(open.label) block of line \(open.line) holds no X.509 certificate")
                    }
                    count += 1
                    block = nil
                } else {
                    block?.base64 += line
                }
            } else if text.hasPrefix("-----BEGIN "), text.hasSuffix("-----") {
                let label = String(text.dropFirst("-----BEGIN ".count).dropLast(5))
                guard ["CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE"].contains(label) else {
                    let hint = label.hasSuffix("PRIVATE KEY") ? " (a key, not a CA certificate: keep keys out of the bundle)" : ""
                    throw Problem(description: "line \(lineNumber) begins a \(label), not a certificate\(hint)")
                }
                block = (label, lineNumber, [])
            }
        }
        if let open = block { throw Problem(description: "the \(open.label) block of line \(open.line) has no END line") }
        guard count > 0 else { throw Problem(description: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)") }
        return count
    }

    /// Whether `der` is shaped as an X.509 certificate: a SEQUENCE of the signed part (a
    /// SEQUENCE), the signature algorithm (a SEQUENCE) and the signature (a BIT STRING). A
    /// `TRUSTED CERTIFICATE` carries OpenSSL's trust settings after it.
    static func isCertificate(_ der: [UInt8]) -> Bool {
        guard let outer = DER.element(der, at: 0), outer.tag == 0x30, outer.end <= der.count else { return false }
        var at = outer.contentStart
        for tag: UInt8 in [0x30, 0x30, 0x03] {
            guard let e = DER.element(der, at: at), e.tag == tag, e.end <= outer.end else { return false }
            at = e.end
        }
        return at == outer.end
    }

    /// Just enough DER to walk a certificate's top level.
    enum DER {
        /// The element starting at `at`: its tag, where its content starts and where it ends.
        static func element(_ d: [UInt8], at: Int) -> (tag: UInt8, contentStart: Int, end: Int)? {
            guard at + 2 <= d.count else { return nil }
            let tag = d[at]
            let first = d[at + 1]
            if first < 0x80 { return (tag, at + 2, at + 2 + Int(first)) }
            let n = Int(first & 0x7F)
            guard n >= 1, n <= 4, at + 2 + n <= d.count else { return nil }
            var length = 0
            for b in d[(at + 2) ..< (at + 2 + n)] { length = length << 8 | Int(b) }
            return (tag, at + 2 + n, at + 2 + n + length)
        }
    }

    /// Standard base64 (RFC 4648), whitespace ignored, as PEM bodies are written.
    enum Base64 {
        static func decode(_ text: [UInt8]) -> [UInt8]? {
            var out: [UInt8] = []
            out.reserveCapacity(text.count * 3 / 4)
            var acc: UInt32 = 0
            var bits = 0
            var padding = 0
            for c in text {
                let v: UInt32
                switch c {
                case UInt8(ascii: "A") ... UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
                case UInt8(ascii: "a") ... UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a") + 26)
                case UInt8(ascii: "0") ... UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0") + 52)
                case UInt8(ascii: "+"): v = 62
                case UInt8(ascii: "/"): v = 63
                case UInt8(ascii: "="):
                    padding += 1
                    continue
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"): continue
                default: return nil
                }
                guard padding == 0 else { return nil }
                acc = acc << 6 | v
                bits += 6
                if bits >= 8 {
                    bits -= 8
                    out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
                }
            }
            guard padding <= 2 else { return nil }
            return out
        }
    }
}
