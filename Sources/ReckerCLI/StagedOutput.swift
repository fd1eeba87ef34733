import Glibc

/// The temporary file `-o` writes into until the transfer succeeds: removed when recker is
/// interrupted (SIGINT, SIGTERM, SIGHUP), so no `FILE.recker-XXXXXX` is left beside FILE.
enum StagedOutput {
    /// The path, as C text the signal handler can read without allocating; nil when none.
    nonisolated(unsafe) private static var path: UnsafeMutablePointer<CChar>?

    /// Starts (a path) or stops (nil) removing the file on an interrupting signal.
    static func removeOnSignal(_ temp: String?) {
        let old = path
        path = nil
        free(old)
        guard let temp else { return }
        path = strdup(temp)
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig) { sig in
                if let p = StagedOutput.path { unlink(p) }
                signal(sig, SIG_DFL)
                raise(sig)
            }
        }
    }
}
