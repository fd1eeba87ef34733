import ReckerCLI
import ReckerProtocol

#if canImport(Glibc)
import Glibc
#endif

/// `recker`: a curl-shaped command that sends its request through reckerd. A fully static
/// binary without libcurl, so it starts in well under a millisecond; the rare fetch without
/// a daemon (`--fallback`) hands over to `recker-direct`, which loads libcurl.

/// Replaces this process with `recker-direct` (beside this binary, or `$RECKER_DIRECT`).
func execDirect() -> Int32? {
    var helper = getenv("RECKER_DIRECT").map { String(cString: $0) } ?? ""
    if helper.isEmpty {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        let me = String(decoding: buf[0 ..< n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        helper = String(me[..<(me.lastIndex(of: "/") ?? me.startIndex)]) + "/recker-direct"
    }
    var argv: [UnsafeMutablePointer<CChar>?] = ([helper] + CommandLine.arguments.dropFirst()).map { strdup($0) }
    argv.append(nil)
    execv(helper, argv)
    let reason = String(cString: strerror(errno))
    _ = "recker: cannot run the fallback helper \(helper): \(reason)\n".withCString { write(2, $0, strlen($0)) }
    return nil
}

let env = CLIEnvironment(
    connect: { (path: String, timeout: Int, _: DirectSettings) throws(ReckerError) -> any MessageChannel in
        try ReckerConnection(socketPath: path, handshakeTimeoutMs: timeout, waitForWelcome: false)
    },
    fallback: execDirect,
    direct: false)
exit(runRecker(Array(CommandLine.arguments.dropFirst()), env))
