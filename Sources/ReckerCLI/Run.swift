import ReckerProtocol

#if canImport(Glibc)
import Glibc
#endif

/// What differs between `recker` and its fallback helper `recker-direct`.
public struct CLIEnvironment {
    /// Opens the channel requests go through (`recker-direct` makes its connections as
    /// `DirectSettings` say; the daemon's are its own).
    public var connect: (_ socketPath: String, _ handshakeTimeoutMs: Int, _ direct: DirectSettings) throws(ReckerError) -> any MessageChannel
    /// Runs the request without the daemon when none listens and fallback is on; returns
    /// the exit code (or nil when no fallback is available).
    public var fallback: (() -> Int32?)?
    /// True in `recker-direct`: the request goes out directly, not pooled.
    public var direct: Bool

    public init(connect: @escaping (_ socketPath: String, _ handshakeTimeoutMs: Int, _ direct: DirectSettings) throws(ReckerError) -> any MessageChannel,
                fallback: (() -> Int32?)?, direct: Bool) {
        self.connect = connect
        self.fallback = fallback
        self.direct = direct
    }
}

/// Exit codes (README "Exit codes"): curl's where curl has the same meaning, 70+ for the daemon.
enum ExitCode {
    static let ok: Int32 = 0
    static let usage: Int32 = 2
    static let badRequest: Int32 = 3
    static let dns: Int32 = 6
    static let connect: Int32 = 7
    static let upstreamProtocol: Int32 = 8
    static let httpError: Int32 = 22
    static let writeError: Int32 = 23
    static let timeout: Int32 = 28
    static let tls: Int32 = 35
    static let redirects: Int32 = 47
    static let send: Int32 = 55
    static let recv: Int32 = 56
    /// The body ended before the length the upstream announced (curl's CURLE_PARTIAL_FILE).
    static let partialFile: Int32 = 18
    static let daemonUnavailable: Int32 = 70
    static let daemonProtocol: Int32 = 71
    static let daemonRefused: Int32 = 72
    static let batchItemsFailed: Int32 = 73

    static func of(_ e: ReckerError) -> Int32 {
        switch e.code {
        case .daemonUnavailable: daemonUnavailable
        case .invalidMethod, .invalidURL, .invalidHeaderName, .invalidHeaderValue, .forbiddenHeader,
             .unknownCriticalOption, .bodyLengthMismatch, .headersTooLarge: badRequest
        case .dnsFailed: dns
        case .connectFailed: connect
        case .connectTimeout, .timeout, .queueTimeout: timeout
        // curl's own code for each TLS failure (60: the certificate was not verified), which
        // the daemon passes on as detail.
        case .tlsFailed: (1 ... 99).contains(e.detail) ? Int32(e.detail) : tls
        case .tooManyRedirects: redirects
        case .upstreamSendFailed: send
        case .upstreamRecvFailed: e.detail == 18 ? partialFile : recv
        // curl's 61: an answer whose Content-Encoding cannot be decoded.
        case .upstreamProtocol, .upstreamFailed: e.detail == 61 ? 61 : upstreamProtocol
        case .shuttingDown, .queueFull, .tooManyInFlight, .accessDenied, .localResources, .destinationDenied, .tooManyClients: daemonRefused
        default: daemonProtocol
        }
    }
}

/// Runs the `recker` command line and returns its exit code.
public func runRecker(_ arguments: [String], _ env: CLIEnvironment) -> Int32 {
    // A reader that goes away (`| head -c 10`) is a write error (exit 23, as curl), not a
    // death by SIGPIPE (141).
    signal(SIGPIPE, SIG_IGN)
    do {
        return run(try Options.parse(arguments), env)
    } catch {
        if let m = error.message {
            Output.stderr.write("recker: \(m)\nrecker: try 'recker --help'\n")
        } else {
            Output.stdout.write(Options.usage + "\n")
        }
        return error.message == nil ? 0 : error.exitCode
    }
}

/// The hint after an error that a person can act on, or nil.
private func hint(_ e: ReckerError) -> String? {
    guard e.code == .daemonUnavailable else { return nil }
    if e.detail == UInt32(EACCES) {
        return "recker: your user may not use this socket: ask an administrator to add you to the `reckerd` group (sudo usermod -aG reckerd $USER), then log in again (or run `newgrp reckerd`) so the new group applies\n"
    }
    return "recker: start the daemon with `reckerd` (or `systemctl start reckerd.socket`), point RECKER_SOCKET at its socket, or pass --fallback to fetch without it\n"
}

func run(_ o: Options, _ env: CLIEnvironment) -> Int32 {
    if o.version {
        Output.stdout.write("recker \(Message.release) (reckerd protocol \(Message.version))\n")
        return ExitCode.ok
    }
    let socketPath = o.socket ?? SocketPaths.clientPath()
    func report(_ e: ReckerError) -> Int32 {
        if !o.silent || o.showError {
            var text = "recker: \(e.message) [\(e.code.name)]\n"
            if e.mayHaveReachedUpstream && !e.retrySafe {
                text += "recker: the request may have reached the upstream: sending it again may repeat its effect\n"
            }
            text += hint(e) ?? ""
            Output.stderr.write(text)
        }
        return ExitCode.of(e)
    }
    if o.batch, let dir = o.outputDir {
        var st = stat()
        guard stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            Output.stderr.write("recker: --output-dir \(dir): no such directory (batch writes DIR/INDEX into an existing one)\n")
            return ExitCode.usage
        }
        guard access(dir, W_OK) == 0 else {
            Output.stderr.write("recker: --output-dir \(dir): \(String(cString: strerror(errno)))\n")
            return ExitCode.writeError
        }
    }

    if let reason = o.directReason, !env.direct {
        // Served in this process as curl would, not pooled (DirectSettings).
        if let fallback = env.fallback, let code = fallback() { return code }
        Output.stderr.write("recker: \(reason) needs a connection of its own, made by recker-direct, which could not be run\n")
        return ExitCode.daemonUnavailable
    }
    let connection: any MessageChannel
    do {
        // The handshake waits as long as -m allows, else a few seconds.
        connection = try env.connect(socketPath, o.request.totalTimeoutMs.map { Int($0) } ?? ReckerConnection.defaultHandshakeTimeoutMs, o.direct)
    } catch {
        if error.code == .daemonUnavailable, o.fallback, let fallback = env.fallback, let code = fallback() {
            return code
        }
        let code = report(error)
        if !o.stats && !o.batch, let w = o.writeOut {
            for target in o.targets {
                var r = TransferReport(url: target.given, urlEffective: target.url, method: o.method!)
                r.error = error
                r.exitCode = code
                r.errorMessage = error.message
                WriteOut(report: r, filename: target.output, pooled: !env.direct, referer: o.referer).write(w)
            }
        }
        return code
    }
    if env.direct && o.directReason == nil && !o.silent {
        Output.stderr.write("recker: no reckerd listening; fetching directly (not pooled)\n")
    }

    if o.stats {
        do {
            try connection.send(.statsRequest(stream: 1, format: o.statsFormat))
            while true {
                switch try connection.receive() {
                case .statsResponse(_, let document, let more):
                    Output.stdout.write(document)
                    if more { continue }
                    if o.statsFormat == 0 { Output.stdout.write([0x0A]) }
                    return ExitCode.ok
                case .error(_, let e): return report(e)
                default: continue
                }
            }
        } catch { return report(error) }
    }

    if o.batch {
        let path = o.url ?? "-"
        let text: String
        do { text = String(decoding: try readAll(path), as: UTF8.self) } catch {
            Output.stderr.write("recker: \(error.message ?? "cannot read \(path)")\n")
            return error.exitCode
        }
        do {
            let items = try Batch.read(text, options: o.request, headers: o.headers)
            let progress = !o.silent && isatty(2) == 1
            let failed = try Batch(items: items, concurrency: o.concurrency, outputDir: o.outputDir, fail: o.fail,
                                   progress: progress, connection: connection).run()
            return failed == 0 ? ExitCode.ok : ExitCode.batchItemsFailed
        } catch let e as UsageError {
            Output.stderr.write("recker: \(e.message ?? "bad input")\n")
            return ExitCode.usage
        } catch let e as ReckerError {
            return report(e)
        } catch {
            return ExitCode.daemonProtocol
        }
    }

    // One URL after another over the one connection, as curl without -Z: each writes its
    // own output and -w, and the exit code is the last one's (curl's).
    var channel = connection
    var code = ExitCode.ok
    // The cookie engine lives for the invocation, in this process (never the daemon's).
    var jar: CookieJar?
    if o.cookieEngine {
        let j = CookieJar()
        // As curl, a cookie file that cannot be read is no error: it starts empty.
        for file in o.cookieFiles { if let bytes = try? readAll(file) { j.load(bytes, junkSession: o.junkSessionCookies) } }
        jar = j
    }
    for (n, target) in o.targets.enumerated() {
        var one = o
        one.select(target)
        // -D's file takes every URL's heads: the first truncates it, the rest append.
        one.appendDumpHeader = n > 0
        (code, channel) = fetch(one, env, socketPath: socketPath, connection: channel, jar: jar, report: report)
        if o.failEarly && code != ExitCode.ok { break }
    }
    if let path = o.cookieJar, let jar {
        let text = jar.netscapeFile()
        if path == "-" {
            Output.stdout.write(text)
        } else if !writeFile(path, Array(text.utf8)) && !o.silent {
            Output.stderr.write("recker: WARNING: failed to save cookies in \(path): \(String(cString: strerror(errno)))\n")
        }
    }
    return code
}

/// The file name in a Content-Disposition header (`filename="a.tgz"`), its last path
/// segment only, as curl -J takes it; nil without one.
private func contentDispositionName(_ head: ResponseHead) -> String? {
    guard let value = head.header("content-disposition") else { return nil }
    let lower = Array(value.lowercased().utf8)
    let key = Array("filename=".utf8)
    guard let at = (0 ... max(0, lower.count - key.count)).first(where: { lower.count >= key.count && Array(lower[$0 ..< $0 + key.count]) == key })
    else { return nil }
    var name = String(decoding: Array(value.utf8)[(at + key.count)...], as: UTF8.self)
    if name.hasPrefix("\"") {
        name = String(name.dropFirst().prefix { $0 != "\"" })
    } else {
        name = String(name.prefix { $0 != ";" }).trimming(" \t")
    }
    if let slash = name.lastIndex(where: { $0 == "/" || $0 == "\\" }) { name = String(name[name.index(after: slash)...]) }
    return name
}

/// mkdir -p of the directories above `path` (--create-dirs).
private func makeParents(_ path: String) {
    let bytes = Array(path.utf8)
    for (i, b) in bytes.enumerated() where b == UInt8(ascii: "/") && i > 0 {
        mkdir(String(decoding: bytes[..<i], as: UTF8.self), 0o777)
    }
}

/// Writes `bytes` to `path`, replacing it.
private func writeFile(_ path: String, _ bytes: [UInt8]) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return Output(fd: fd).write(bytes)
}

/// Fetches `o`'s selected URL: opens its outputs, runs the transfer, writes -w and the error.
private func fetch(_ given: Options, _ env: CLIEnvironment, socketPath: String, connection: any MessageChannel, jar: CookieJar?,
                   report: (ReckerError) -> Int32) -> (Int32, any MessageChannel) {
    var o = given
    var out = Output.stdout
    if o.createDirs, let path = o.output, path != "-" { makeParents(path) }
    // -C: Range from the output file's size (or the offset given); the body is appended.
    if let resume = o.resume {
        var st = stat()
        let offset: Int64 = switch resume {
        case .at(let n): n
        case .fromFile: o.output.flatMap { $0 != "-" && stat($0, &st) == 0 ? Int64(st.st_size) : nil } ?? 0
        }
        if offset > 0 {
            o.resumeOffset = offset
            o.headers.append((name: "Range", value: "bytes=\(offset)-"))
        }
    }
    // -z: a date, or a file's modification time; '-' first asks for an older one.
    if let condition = o.timeCondition {
        let unmodified = condition.hasPrefix("-")
        let spec = unmodified ? String(condition.dropFirst()) : condition
        var st = stat()
        let when: Int64? = stat(spec, &st) == 0 ? Int64(st.st_mtim.tv_sec) : HTTPDate.parse(spec)
        if let when {
            o.headers.append((name: unmodified ? "If-Unmodified-Since" : "If-Modified-Since", value: HTTPDate.format(when)))
        } else if !o.silent {
            Output.stderr.write("Warning: Illegal date format for -z, --time-cond (and not a file name). Disabling time condition. See curl_getdate(3) for valid date syntax.\n")
        }
    }
    // -o FILE: a regular file (or a new one) is written to a temporary file beside it and
    // renamed over it at the end, so a refused request or a -f error, which write no body,
    // leave an existing FILE as it was (curl opens it at the first byte); a transfer that
    // broke after some bytes leaves them in FILE, as curl does (--remove-on-error: not).
    // Anything else (a device such as /dev/null, a FIFO, a symbolic link) is opened and
    // written in place, as curl does: renaming over it would replace the device or the
    // link with a regular file. With -C the file is appended to in place.
    var staged: (fd: Int32, temp: String, path: String)?
    var direct: (fd: Int32, rewindable: Bool)?
    if let path = o.output, path != "-", o.resumeOffset > 0 {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o666)
        guard fd >= 0 else {
            if !o.silent || o.showError { Output.stderr.write("recker: cannot write \(path): \(String(cString: strerror(errno)))\n") }
            return (ExitCode.writeError, connection)
        }
        direct = (fd, false)
        out = Output(fd: fd)
    } else if let path = o.output, path != "-" {
        var st = stat()
        let exists = lstat(path, &st) == 0
        if exists && (st.st_mode & S_IFMT) != S_IFREG {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
            guard fd >= 0 else {
                if !o.silent || o.showError {
                    Output.stderr.write("recker: cannot write \(path): \(String(cString: strerror(errno)))\n")
                }
                return (ExitCode.writeError, connection)
            }
            var target = stat()
            let regular = fstat(fd, &target) == 0 && (target.st_mode & S_IFMT) == S_IFREG
            let discards = (target.st_mode & S_IFMT) == S_IFCHR
            direct = (fd, regular || discards)
            out = Output(fd: fd)
        } else {
            var template = Array((path + ".recker-XXXXXX").utf8CString)
            let fd = mkstemp(&template)
            if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            guard fd >= 0 else {
                if !o.silent || o.showError {
                    Output.stderr.write("recker: cannot write \(path): \(String(cString: strerror(errno)))\n")
                }
                return (ExitCode.writeError, connection)
            }
            let mask = umask(0)
            umask(mask)
            fchmod(fd, 0o666 & ~mask)
            let temp = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
            staged = (fd, temp, path)
            StagedOutput.removeOnSignal(temp)
            out = Output(fd: fd)
        }
    }
    var dump: Output?
    if let path = o.dumpHeader {
        if path == "-" {
            dump = Output.stdout
        } else {
            let fd = open(path, O_WRONLY | O_CREAT | (o.appendDumpHeader ? O_APPEND : O_TRUNC) | O_CLOEXEC, 0o666)
            guard fd >= 0 else {
                if !o.silent || o.showError {
                    Output.stderr.write("recker: cannot write \(path) (-D): \(String(cString: strerror(errno)))\n")
                }
                if let staged { close(staged.fd); unlink(staged.temp); StagedOutput.removeOnSignal(nil) }
                if let direct { close(direct.fd) }
                return (ExitCode.writeError, connection)
            }
            dump = Output(fd: fd)
        }
    }
    let rewind: (() -> Bool)?
    if let staged {
        rewind = { ftruncate(staged.fd, 0) == 0 && lseek(staged.fd, 0, SEEK_SET) == 0 }
    } else if let direct, direct.rewindable {
        // A regular file behind a link is truncated; a character device (/dev/null) has
        // nothing to take back.
        rewind = { (ftruncate(direct.fd, 0) == 0 && lseek(direct.fd, 0, SEEK_SET) == 0) || errno == EINVAL }
    } else {
        rewind = nil
    }
    let transfer = Transfer(o, env: env, socketPath: socketPath, connection: connection, out: out, dump: dump, rewind: rewind, jar: jar)
    var result = transfer.run()
    if let dump, dump.fd != 1 { close(dump.fd) }
    if let staged {
        close(staged.fd)
        var path = staged.path
        var refusedName = false
        // -J: the name the answer's Content-Disposition gives, without any directory; never
        // over a file that exists.
        if o.remoteHeaderName, o.outputIsRemoteName, result.exitCode == ExitCode.ok, let name = result.heads.last.flatMap(contentDispositionName) {
            path = o.outputDir.map { $0.hasSuffix("/") ? $0 + name : $0 + "/" + name } ?? name
            if name.isEmpty {
                // curl 7.88 refuses an empty name too (exit 23).
                result.exitCode = ExitCode.writeError
                result.errorMessage = "the Content-Disposition header names an empty file"
                refusedName = true
            } else if access(path, F_OK) == 0 {
                result.exitCode = ExitCode.writeError
                result.errorMessage = "Refusing to overwrite \(path): File exists"
                refusedName = true
            }
        }
        // A time condition not met (-z: 304) leaves the file as it was, as does a failure
        // before any byte of the body.
        let keep = refusedName ? false
            : result.exitCode == ExitCode.ok ? !result.conditionUnmet : result.delivered > 0 && !o.removeOnError
        if keep && rename(staged.temp, path) != 0 {
            let reason = String(cString: strerror(errno))
            result.exitCode = ExitCode.writeError
            result.errorMessage = "cannot write \(path): \(reason)"
            unlink(staged.temp)
        } else if !keep {
            unlink(staged.temp)
        }
        if keep && o.remoteTime, let modified = result.heads.last?.header("last-modified").flatMap(HTTPDate.parse) {
            // -R: the file's time is the answer's Last-Modified.
            var times = [timespec(tv_sec: Int(modified), tv_nsec: 0), timespec(tv_sec: Int(modified), tv_nsec: 0)]
            utimensat(AT_FDCWD, path, &times, 0)
        }
        StagedOutput.removeOnSignal(nil)
    }
    if let direct { close(direct.fd) }
    if let w = o.writeOut {
        WriteOut(report: result, filename: o.output, pooled: !env.direct, referer: o.referer).write(w)
    }
    if result.exitCode != ExitCode.ok && (!o.silent || o.showError) {
        if var e = result.error, result.exitCode != ExitCode.writeError {
            if e.code == .timeout, o.request.totalTimeoutMs != nil {
                // curl's words for -m running out.
                e.message = "Operation timed out after \(result.totalMicros / 1000) milliseconds with \(result.delivered) bytes received"
            }
            _ = report(e)
        } else if let m = result.errorMessage {
            Output.stderr.write("recker: \(m)\n")
        }
    }
    return (result.exitCode, transfer.connection)
}
