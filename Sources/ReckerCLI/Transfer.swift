import ReckerProtocol

#if canImport(Glibc)
import Glibc
#endif

/// What happened to one command line's request, redirects and retries included: the
/// facts -w prints and the exit code.
struct TransferReport {
    var url: String
    var urlEffective: String
    var method: String
    /// Every response head of the last try, in order; the last one is the final response's.
    var heads: [ResponseHead] = []
    /// The final response's end, when it arrived whole.
    var end: ResponseEnd?
    var error: ReckerError?
    var exitCode: Int32 = ExitCode.ok
    /// curl's errormsg: why the transfer failed, nil when it did not.
    var errorMessage: String?
    /// Where the final response's Location points (when it was not followed).
    var redirectURL: String?
    var redirects = 0
    var redirectMicros: UInt64 = 0
    var totalMicros: UInt64 = 0
    var headerBytes = 0
    var uploadBytes = 0
    var requestBytes = 0
    /// Body bytes of the final response handed to the output (none with -f's failure).
    var delivered: UInt64 = 0
    /// -z's condition was not met (304, or 412 for If-Unmodified-Since): nothing is written.
    var conditionUnmet = false

    /// The final response, when the transfer succeeded: a head whose body then broke is not
    /// a response a script may trust.
    var response: ResponseHead? { error == nil ? heads.last : nil }
}

/// Runs the command line's request: client-side redirects (so every hop's head can be
/// shown, and the effective URL known), retries, and the writing of heads and body.
final class Transfer {
    let o: Options
    let env: CLIEnvironment
    let socketPath: String
    var connection: any MessageChannel
    let out: Output
    let dump: Output?
    /// Rewinds a staged -o file before a retry; nil when the output cannot be rewound.
    let rewind: (() -> Bool)?
    /// The invocation's cookie engine (-b FILE, -c), when it runs.
    let jar: CookieJar?
    private var nextStream: UInt32 = 1
    private let start = ContinuousClock.now
    /// Bytes written to `out` in the current try.
    private var written = 0

    init(_ o: Options, env: CLIEnvironment, socketPath: String, connection: any MessageChannel, out: Output, dump: Output?,
         rewind: (() -> Bool)?, jar: CookieJar? = nil) {
        self.jar = jar
        self.o = o
        self.env = env
        self.socketPath = socketPath
        self.connection = connection
        self.out = out
        self.dump = dump
        self.rewind = rewind
    }

    /// The request's whole life: tries until one succeeds or may not be retried.
    func run() -> TransferReport {
        var retriesLeft = o.retries
        var backoff = 1
        while true {
            written = 0
            var report = attempt(retriesLeft: retriesLeft)
            guard retriesLeft > 0, let problem = retryProblem(report), secondsLeftForRetries() > 0 else { return report }
            if o.uploadFile == "-" {
                // stdin was read as it was sent: there is no second copy to send.
                if !o.silent { Output.stderr.write("recker: not retried: the body came from stdin and cannot be sent again\n") }
                return report
            }
            if written > 0 && !(rewind?() ?? false) {
                // Part of a body went to a stream that cannot be taken back.
                return report
            }
            var wait = o.retryDelaySeconds.flatMap { $0 > 0 ? $0 : nil } ?? backoff
            // As curl: a Retry-After of whole seconds, when above 0, replaces the wait.
            if let after = report.heads.last?.header("retry-after").flatMap({ Int($0.trimming(" ")) }), after > 0 {
                wait = after
            }
            wait = min(wait, 600, secondsLeftForRetries())
            if !o.silent {
                Output.stderr.write("Warning: Problem \(problem). Will retry in \(wait) seconds. \(retriesLeft) retries left.\n")
            }
            if wait > 0 { sleep(UInt32(wait)) }
            retriesLeft -= 1
            backoff = min(backoff * 2, 600)
            if let e = report.error, e.code == .connectionLost || e.code.isConnectionError {
                do {
                    connection = try env.connect(socketPath, ReckerConnection.defaultHandshakeTimeoutMs, o.direct)
                } catch {
                    report.error = error
                    report.exitCode = ExitCode.of(error)
                    report.errorMessage = error.message
                    return report
                }
            }
        }
    }

    /// Whole seconds --retry-max-time still allows (a large number without it).
    private func secondsLeftForRetries() -> Int {
        guard let max = o.retryMaxTimeSeconds else { return Int(Int32.max) }
        let elapsed = Int((ContinuousClock.now - start).nanoseconds / 1_000_000_000)
        return Swift.max(0, max - elapsed)
    }

    /// Why the try may be made again (curl's words), or nil when it may not.
    private func retryProblem(_ r: TransferReport) -> String? {
        if let e = r.error {
            guard e.retrySafe else {
                if o.retryAllErrors && !o.silent {
                    Output.stderr.write("recker: not retried: \(e.code.name) may have reached the upstream, and \(r.method) is not safe to send twice\n")
                }
                return nil
            }
            if o.retryAllErrors { return ": \(e.code.name)" }
            switch e.code {
            case .timeout, .connectTimeout, .queueTimeout: return ": timeout"
            case .connectFailed: return o.retryConnectionRefused ? ": connection refused" : nil
            case .dnsFailed, .queueFull, .shuttingDown, .tooManyInFlight, .localResources,
                 .upstreamSendFailed, .upstreamRecvFailed: return ": \(e.code.name)"
            default: return nil
            }
        }
        if o.retryAllErrors, r.exitCode == ExitCode.httpError, Transfer.idempotent.contains(r.method) { return ": HTTP error" }
        if let h = r.heads.last, Transfer.retryStatuses.contains(h.status), Transfer.idempotent.contains(r.method) {
            return ": HTTP error"
        }
        return nil
    }

    /// Statuses curl's --retry tries again on.
    static let retryStatuses: Set<UInt16> = [408, 429, 500, 502, 503, 504]
    /// Methods a repeat cannot have a further effect with (RFC 9110 §9.2.2).
    static let idempotent: Set<String> = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]

    /// One try: the request and every redirect it leads to.
    private func attempt(retriesLeft: Int) -> TransferReport {
        let url = o.url!
        var report = TransferReport(url: o.givenURL ?? url, urlEffective: url, method: o.method!)
        var method = o.method!
        var body: BodySource?
        do { body = try o.bodySource() } catch {
            return fail(&report, ReckerError(.internalError, error.message ?? "cannot read the body"), exitCode: error.exitCode)
        }
        var bodyUsed = false
        var headers = o.headers
        if let auth = o.urlAuthorization { headers.insert((name: "Authorization", value: auth), at: 0) }
        if !o.has("user-agent") { headers.append((name: "User-Agent", value: "recker/\(Message.release)")) }
        let origin = URLText.parse(url)?.origin
        // -m holds for each try, as curl's (a retry gets the whole time again).
        let deadline = o.request.totalTimeoutMs.map { ContinuousClock.now + .milliseconds($0) }
        // -n: credentials for the first origin's host from .netrc, unless -u gave some.
        if let netrc = o.netrc, !headers.contains(where: { $0.name.lowercased() == "authorization" }),
           let host = URLText.parse(url)?.host {
            let path: String? = switch netrc {
            case .required(let p), .optional(let p): p ?? Netrc.defaultPath()
            }
            if let path, let bytes = try? readAll(path), let user = Netrc(String(decoding: bytes, as: UTF8.self)).credentials(for: host) {
                headers.append((name: "Authorization", value: "Basic " + Base64.encode(Array(user.utf8))))
            }
        }
        while true {
            // --proto, and for redirects --proto-redir as well: a scheme not allowed is
            // never asked for (curl's exit 1).
            let scheme = URLText.parse(report.urlEffective)?.scheme ?? ""
            let allowed = report.redirects == 0 ? o.protocols : (o.protocols ?? Protocols.known).intersection(o.redirectProtocols ?? Protocols.known)
            if let allowed, !allowed.contains(scheme) {
                return fail(&report, ReckerError(.invalidURL, "Protocol \"\(scheme)\" not supported or disabled in libcurl"), exitCode: 1)
            }
            var options = o.request
            options.followRedirects = nil
            options.keepMethod = nil
            if let deadline {
                let left = ContinuousClock.now.duration(to: deadline)
                guard left > .zero else {
                    return fail(&report, ReckerError(.timeout, "the whole request took longer than -m allowed"))
                }
                options.totalTimeoutMs = UInt32(clamping: max(1, left.nanoseconds / 1_000_000))
            }
            var sent = headers
            let hop = URLText.parse(report.urlEffective)
            if let jar, let hop, let cookies = jar.header(for: hop) {
                // As libcurl: the engine's cookies first, then -b's own, in one header.
                let given = sent.filter { $0.name.lowercased() == "cookie" }.map(\.value)
                sent.removeAll { $0.name.lowercased() == "cookie" }
                sent.append((name: "Cookie", value: ([cookies] + given).joined(separator: "; ")))
            }
            if body != nil, let type = o.automaticContentType { sent.append((name: "Content-Type", value: type)) }
            // A body sent before (a 307/308 hop) goes again from its first byte, if it can.
            if let b = body, bodyUsed, !b.rewind() {
                return fail(&report, ReckerError(.internalError, "necessary data rewind wasn't possible: the body came from a pipe"), exitCode: 65)
            }
            bodyUsed = body != nil
            let head = RequestHead(method: method, url: report.urlEffective, headers: sent,
                                   bodyLength: body.map { $0.length } ?? nil, options: options)
            report.method = method
            report.uploadBytes = Int(body?.length ?? 0)
            report.requestBytes = HeadText.request(head, version: "1.1").utf8.count
            var location: String?
            var rangeIgnored = false
            var tooLarge = false
            var failed = false
            var writeFailed = false
            let outcome = exchange(head, body) { (h: ResponseHead) -> Bool in
                report.heads.append(h)
                if let jar, let hop {
                    for (name, value) in h.headers where name.lowercased() == "set-cookie" { jar.receive(value, from: hop) }
                }
                let text = HeadText.response(h)
                report.headerBytes += text.utf8.count
                if o.verbose {
                    Output.stderr.write(verboseConnection(h) + HeadText.prefixed(HeadText.request(head, version: h.httpVersion >= 20 ? h.versionName : "1.1"), "> ")
                                        + HeadText.prefixed(text, "< "))
                }
                dump?.write(text)
                // An empty Location is not followed (curl answers with the body, exit 0).
                location = o.follow && [301, 302, 303, 307, 308].contains(h.status) ? h.header("location").flatMap { $0.isEmpty ? nil : $0 } : nil
                if location != nil {
                    // As curl -L -i: every hop's head, the last response's body.
                    if (o.include || o.headOnly) && !write(Array(text.utf8)) { writeFailed = true }
                    return false
                }
                // -z's condition not met: the output stays as it was.
                if o.timeCondition != nil && h.status == 304 {
                    report.conditionUnmet = true
                    return false
                }
                if o.resumeOffset > 0 {
                    // -C: 416 means the file is whole already (curl exits 0); any other answer
                    // but 206 (an ignored Range, an error, an unfollowed redirect) is not the
                    // rest of the file and is never appended (curl's exit 33).
                    if h.status == 416 { return false }
                    if h.status != 206 {
                        rangeIgnored = true
                        return false
                    }
                }
                if let max = o.maxFileSize, let length = h.header("content-length").flatMap({ Int64($0) }), length > max {
                    tooLarge = true
                    return false
                }
                // A response about to be tried again, or failed by -f, is not written.
                if retriesLeft > 0, Transfer.retryStatuses.contains(h.status), Transfer.idempotent.contains(method),
                   secondsLeftForRetries() > 0 {
                    return false
                }
                failed = h.status >= 400 && (o.fail || o.failWithBody)
                if failed && o.fail { return false }
                if o.include || o.headOnly {
                    guard write(Array(text.utf8)) else { writeFailed = true; return false }
                }
                // -I shows the head only, whatever method -X sends.
                return !o.headOnly
            } body: { (data: [UInt8]) -> Bool in
                report.delivered += UInt64(data.count)
                return write(data)
            }
            switch outcome {
            case .failed(let e):
                if o.verbose && report.heads.isEmpty {
                    Output.stderr.write(HeadText.prefixed(HeadText.request(head, version: "1.1"), "> "))
                }
                return fail(&report, e)
            case .writeFailed:
                return fail(&report, ReckerError(.internalError, "failed writing the body"), exitCode: ExitCode.writeError)
            case .done(let h, let end):
                if writeFailed {
                    return fail(&report, ReckerError(.internalError, "failed writing the head"), exitCode: ExitCode.writeError)
                }
                report.totalMicros += UInt64(end.totalMicros)
                if o.verbose {
                    let closed = env.direct || h.header("connection")?.lowercased() == "close"
                    Output.stderr.write("* reckerd connection #\(h.connectionID) \(closed ? "closed" : "left in the pool")\n")
                }
                if rangeIgnored {
                    return fail(&report, ReckerError(.upstreamFailed, "HTTP server doesn't seem to support byte ranges. Cannot resume."), exitCode: 33)
                }
                if tooLarge {
                    return fail(&report, ReckerError(.upstreamFailed, "Maximum file size exceeded"), exitCode: 63)
                }
                guard let location else {
                    report.end = end
                    if let l = h.header("location"), (300 ..< 400).contains(h.status) {
                        report.redirectURL = URLText.resolve(l, against: report.urlEffective)
                    }
                    if failed {
                        return fail(&report, ReckerError(.upstreamFailed, "The requested URL returned error: \(h.status)"),
                                    exitCode: ExitCode.httpError, keepResponse: true)
                    }
                    return report
                }
                guard report.redirects < o.maxRedirects else {
                    return fail(&report, ReckerError(.tooManyRedirects, "Maximum (\(o.maxRedirects)) redirects followed"))
                }
                let next = URLText.resolve(location, against: report.urlEffective)
                guard let parts = URLText.parse(next), parts.scheme == "http" || parts.scheme == "https", !parts.authority.isEmpty else {
                    // curl's exit 1: a scheme not supported (recker follows http and https).
                    return fail(&report, ReckerError(.upstreamFailed, "refused to follow a redirect to \(next): only http and https URLs are followed"), exitCode: 1)
                }
                guard parts.userinfo == nil else {
                    return fail(&report, ReckerError(.upstreamFailed, "refused to follow a redirect to a URL with credentials in it"))
                }
                report.redirects += 1
                report.redirectMicros += UInt64(end.totalMicros)
                // As curl 7.88: 303 makes anything but HEAD a GET; 301 and 302 make a POST a
                // GET. A method named with -X keeps its name, but the body is dropped all the
                // same (curl -X POST -L then sends a body-less POST).
                let keep = o.request.keepMethod == true
                if o.keepPost.contains(h.status) && method == "POST" {
                    // --post301/302/303: the POST goes on as it was, body included.
                } else if h.status == 303 || ((h.status == 301 || h.status == 302) && o.posts && body != nil) {
                    if !keep && method != "HEAD" { method = "GET" }
                    body = nil
                }
                // Credentials and cookies named on the command line go to the first origin
                // only (curl 7.88 drops -u, -b and -H Cookie/Authorization on another host).
                if parts.origin != origin && !o.locationTrusted {
                    headers.removeAll { ["authorization", "cookie"].contains($0.name.lowercased()) }
                }
                if o.autoReferer {
                    // -e ';auto': the hop's Referer is the URL redirected from (without its fragment).
                    headers.removeAll { $0.name.lowercased() == "referer" }
                    let from = report.urlEffective.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
                    headers.append((name: "Referer", value: String(from)))
                }
                report.urlEffective = next
            }
        }
    }

    private func write(_ data: [UInt8]) -> Bool {
        written += data.count
        return out.write(data)
    }

    private func fail(_ r: inout TransferReport, _ e: ReckerError, exitCode: Int32? = nil, keepResponse: Bool = false) -> TransferReport {
        if !keepResponse { r.error = e }
        r.totalMicros = max(r.totalMicros, (ContinuousClock.now - start).nanoseconds / 1000)
        r.exitCode = exitCode ?? ExitCode.of(e)
        r.errorMessage = e.message
        return r
    }

    private func verboseConnection(_ h: ResponseHead) -> String {
        guard !env.direct else { return "* fetched directly (no reckerd: not pooled), HTTP/\(h.versionName)\n" }
        let waited = WriteOut.seconds(UInt64(h.queueMicros))
        return "* reckerd connection #\(h.connectionID) (\(h.reused ? "reused" : "new")), HTTP/\(h.versionName), waited \(waited) s for it\n"
    }

    enum Outcome {
        case done(ResponseHead, ResponseEnd)
        case failed(ReckerError)
        case writeFailed
    }

    /// Sends one request and reads its answer. `head` decides whether the body is written;
    /// `body` writes a piece of it and says whether that worked.
    private func exchange(_ request: RequestHead, _ upload: BodySource?, head onHead: (ResponseHead) -> Bool,
                          body onBody: ([UInt8]) -> Bool) -> Outcome {
        let stream = nextStream
        nextStream = nextStream == UInt32(Int32.max) ? 1 : nextStream + 1
        let hasBody = upload.map { !$0.isEmpty } ?? false
        var ended = !hasBody
        var unacked = 0
        var response: ResponseHead?
        var keepBody = true
        var headSent = false
        do {
            // The head goes out before WELCOME is read (PROTOCOL.md 2.2) when it fits the
            // smallest limits a daemon can announce: the request then costs no extra round trip.
            let early = (try? Message.requestHead(stream: stream, request, endRequest: !hasBody).encoded.count).map { $0 - 4 <= 4096 } ?? false
            if !early { _ = connection.welcome }
            try connection.send(.requestHead(stream: stream, request, endRequest: !hasBody))
            headSent = true
            let window = Int(connection.welcome.initialWindow)
            let maxData = Int(connection.welcome.maxFrame) - Frame.headerSize
            var sendWindow = window
            while true {
                if !ended, sendWindow > 0, let upload {
                    // Read as it is sent: a body of any size never sits in memory whole.
                    let (chunk, end) = try upload.next(max: min(sendWindow, maxData))
                    try connection.send(.requestBody(stream: stream, chunk, endRequest: end))
                    sendWindow -= chunk.count
                    ended = end
                    continue
                }
                let message = try connection.receive()
                // Stream 0 carries the connection's own errors.
                guard message.stream == stream || message.stream == 0 else { continue }
                switch message {
                case .windowUpdate(_, let inc):
                    sendWindow += Int(inc)
                case .responseHead(_, let h):
                    response = h
                    keepBody = onHead(h)
                case .responseBody(_, let data):
                    unacked += data.count
                    if keepBody && !onBody(data) { return .writeFailed }
                    if unacked >= window / 2 {
                        try connection.send(.windowUpdate(stream: stream, increment: UInt32(unacked)))
                        unacked = 0
                    }
                case .responseEnd(_, let end):
                    guard let response else { return .failed(ReckerError(.malformedFrame, "RESPONSE_END before RESPONSE_HEAD")) }
                    return .done(response, end)
                case .error(_, let e):
                    return .failed(e)
                default:
                    continue
                }
            }
        } catch {
            var error = error
            if error.code == .connectionLost && headSent {
                // The daemon went away with the request (PROTOCOL.md §5): it may have
                // reached the upstream.
                error.mayHaveReachedUpstream = true
                error.retrySafe = RequestValidator.isSafeMethod(request.method)
            }
            return .failed(error)
        }
    }
}
