import CReckerCurl
import Glibc
import ReckerProtocol

/// The engine's decisions about a transfer, without a handle, a socket or a clock of its
/// own: how a transfer libcurl finished ends (its error, or a start over on a fresh
/// connection), when a running one has stalled, and whether an error may have reached the
/// upstream. `CurlEngine` gathers the facts from its records and libcurl, asks, and carries
/// the verdict out; TransferPolicyTests try every rule with plain values.
enum TransferPolicy {
    /// What the transfer's record and libcurl say of a transfer libcurl reports done.
    struct Outcome {
        var result: CURLcode
        var head: RequestHead
        var hasBody = false
        /// The request body is kept whole, so it can be sent again.
        var replayable = true
        var isWarmUp = false
        /// A HEAD-like answer whose head was all that was due: done, whatever libcurl says.
        var headOnlyAnswered = false
        /// The connection died under a resend libcurl began; the engine starts it over.
        var restartFresh = false
        var sawResponse = false
        var headComplete = true
        var headSent = false
        var interimAsFinal: String?
        var deniedDestination: String?
        var socketError: Int32?
        /// The last URL libcurl worked on is http(s) (asked only for CURLE_UNSUPPORTED_PROTOCOL).
        var effectiveURLIsHTTP = false
        /// The response's status (asked only for CURLE_SEND_FAIL_REWIND).
        var status = 0
        var responseBuffer = 0
        var redirectRefused: String?
        var headRefused: String?
        var resendRefused = false
        var neverProcessed = false
        var resentAfterHTTP2 = false
        var connected = false
        /// libcurl's error buffer, on one line.
        var errorText = ""
        var totalTimeoutMs: UInt32?
        /// Nanoseconds since the request arrived.
        var elapsed: UInt64 = 0
        var restarts = 0
        var startedOnReuse = false

        init(result: CURLcode, head: RequestHead) {
            self.result = result
            self.head = head
        }

        var method: String { head.method }

        /// An error the upstream may have seen the request of (`retrySafe` for safe methods).
        func reached(_ code: ReckerError.Code, _ message: String, detail: UInt32 = 0) -> ReckerError {
            ReckerError(code, message, detail: detail, mayHaveReachedUpstream: true, retrySafe: RequestValidator.isSafeMethod(method))
        }
    }

    enum Verdict: Equatable {
        case succeeded
        /// The same request again on a fresh connection; the client hears nothing of this try.
        case startOver
        case failed(ReckerError, Note?)
    }

    /// What else the engine counts or says with a failure.
    enum Note: Equatable {
        /// A resend went (or could not go): counted as a retry.
        case retry
        /// The machine ran out of something (descriptors, buffers): said in the log with why.
        case localShortage(String)
    }

    /// How a finished transfer ends. The first rule that holds decides, in this order.
    static func verdict(_ o: Outcome) -> Verdict {
        let result = o.result
        if o.headOnlyAnswered { return .succeeded }
        if o.restartFresh { return .startOver }
        if result == CURLE_OK && o.sawResponse && !o.headComplete {
            // libcurl 8.14 takes a head cut off by the upstream's close ("HTTP/1.1 200
            // OK\r\n", then EOF) for a whole, empty response.
            return .failed(o.reached(.upstreamProtocol, "the upstream closed before its response head was complete"), nil)
        }
        if result == CURLE_OK, let why = o.interimAsFinal { return .failed(o.reached(.upstreamProtocol, why), nil) }
        if result == CURLE_OK { return .succeeded }
        if mayStartOver(o) { return .startOver }
        if let denied = o.deniedDestination, result == CURLE_COULDNT_CONNECT {
            return .failed(ReckerError(.destinationDenied, "reckerd's policy refuses this destination: \(denied); nothing was sent"), nil)
        }
        if let e = o.socketError, result == CURLE_COULDNT_CONNECT, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(e) {
            let reason = String(cString: strerror(e))
            return .failed(ReckerError(.localResources, "reckerd could not open a socket for this request: \(reason); nothing was sent",
                                       detail: UInt32(e)), .localShortage(reason))
        }
        if result == CURLE_TOO_LARGE && !o.headSent && o.sawResponse {
            // libcurl 8.6+ reports a response header line over its 100 KiB limit
            // (CURL_MAX_HTTP_HEADER) so; 7.88 said CURLE_OUT_OF_MEMORY.
            return .failed(o.reached(.upstreamProtocol, "the upstream's response head has a header line over libcurl's 100 KiB limit (CURLE_TOO_LARGE)",
                                     detail: result.rawValue), nil)
        }
        if result == CURLE_UNSUPPORTED_PROTOCOL && o.effectiveURLIsHTTP {
            // libcurl's word (7.88 and 8.14) for an answer without a status line (HTTP/0.9),
            // which reckerd never accepts; a redirect to another scheme is UPSTREAM_FAILED below.
            return .failed(o.reached(.upstreamProtocol, "the upstream answered without an HTTP status line (HTTP/0.9), which reckerd does not accept",
                                     detail: result.rawValue), nil)
        }
        if result == CURLE_SEND_FAIL_REWIND && o.sawResponse {
            // A 307 or 308 asks for the body again (PROTOCOL.md 2.3); reckerd keeps at most
            // limits.responseBuffer of it.
            return .failed(o.reached(.upstreamFailed, "the upstream redirected with \(o.status), which sends the body again, but the body was larger than the \(o.responseBuffer) bytes reckerd keeps for that (limits.responseBuffer); the redirect was not followed",
                                     detail: result.rawValue), nil)
        }
        if result == CURLE_SEND_FAIL_REWIND {
            // The body was over the replay limit, so the resend could not go (PROTOCOL.md 5.1).
            return .failed(o.reached(.upstreamRecvFailed, "the reused connection closed before any answer, and the body (over limits.responseBuffer) was not kept for a resend (it may have reached the upstream)",
                                     detail: result.rawValue), .retry)
        }
        if let refused = o.redirectRefused { return .failed(o.reached(.upstreamFailed, refused, detail: result.rawValue), nil) }
        if let broken = o.headRefused { return .failed(o.reached(.upstreamProtocol, broken, detail: result.rawValue), nil) }
        if o.resendRefused && o.neverProcessed {
            return .failed(ReckerError(
                .upstreamRecvFailed, "the upstream refused the stream each time reckerd sent \(o.method) (REFUSED_STREAM, or a GOAWAY that left it out): it did not process it (RFC 9113 §8.7); reckerd sends a request at most twice",
                mayHaveReachedUpstream: false, retrySafe: true), nil)
        }
        if o.resendRefused {
            // libcurl 8.14 resends after REFUSED_STREAM, or a GOAWAY that left the stream
            // out, as after a dead connection, and says which only in its trace output: the
            // stream may have been processed, as far as reckerd can tell.
            let ended = o.resentAfterHTTP2
                ? "the upstream ended the HTTP/2 stream before any answer (its connection closed, or it sent GOAWAY or REFUSED_STREAM; libcurl does not say which)"
                : "the reused connection closed before any answer"
            let why = RequestValidator.mayResend(o.head)
                ? "\(ended) again after reckerd sent \(o.method) a second time; it sends a request at most twice"
                : "\(ended), and \(o.method) is not idempotent: reckerd did not send it again (it may have reached the upstream; an Idempotency-Key header allows one resend)"
            return .failed(ReckerError(.upstreamRecvFailed, why, mayHaveReachedUpstream: true, retrySafe: RequestValidator.isSafeMethod(o.method)), nil)
        }
        return .failed(libcurlError(o), nil)
    }

    /// libcurl's own error, in reckerd's words where it says more than libcurl.
    private static func libcurlError(_ o: Outcome) -> ReckerError {
        let result = o.result
        let text = o.errorText.isEmpty ? String(cString: curl_easy_strerror(result)) : o.errorText
        var error = ReckerError.upstream(result, method: o.method, connected: o.connected, message: text)
        if text.contains("pause buffer") {
            // libcurl 8.14 buffers at most 64 MiB of a paused transfer's decoded body: a
            // compressed answer can decode to more than that from one read.
            error.code = .upstreamFailed
            error.message = "the response decompressed to more than libcurl holds for a client that is not reading (\(text)); read it faster, or ask without compressed"
        }
        if result == CURLE_OPERATION_TIMEDOUT, let ms = o.totalTimeoutMs, ms > 0, o.elapsed >= UInt64(ms) * 1_000_000 {
            // The total deadline is what ran out, whatever libcurl was doing then.
            error.code = .timeout
            error.message = "the request took longer than its total_timeout of \(ms) ms (\(text))"
        }
        // libcurl (7.88 and 8.14) reports heads past its 300 KiB limit (a flood of 1xx heads,
        // say) as a receive error: the upstream broke the protocol, the network did not.
        if result == CURLE_RECV_ERROR && !o.headSent && o.errorText.hasPrefix("Too large response headers") {
            error.code = .upstreamProtocol
            error.message = "the upstream's response heads passed libcurl's 300 KiB limit (\(o.errorText))"
        }
        return error
    }

    /// Whether a failed transfer may go again on a fresh connection, once: its reused
    /// connection died before any answer and the replay policy allows a resend (libcurl
    /// resends on HTTP/1 itself, but not an HTTP/2 stream whose connection died).
    static func mayStartOver(_ o: Outcome) -> Bool {
        guard o.restarts == 0, !o.headSent, !o.sawResponse, !o.isWarmUp else { return false }
        let died = [CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE].contains(o.result)
        return died && o.startedOnReuse && RequestValidator.mayResend(o.head) && (!o.hasBody || o.replayable)
    }

    /// An attempt that failed before sending (a resend's connect, say) after an earlier one
    /// went out: the request may have reached the upstream all the same, unless every
    /// attempt was refused unprocessed.
    static func reached(_ error: ReckerError?, sentBefore: Bool, neverProcessed: Bool, head: RequestHead) -> ReckerError? {
        guard var e = error, sentBefore, !neverProcessed, !e.mayHaveReachedUpstream else { return error }
        e.mayHaveReachedUpstream = true
        e.retrySafe = RequestValidator.mayResend(head)
        return e
    }

    // MARK: - stalls

    /// How far a running transfer has moved, and since when (the loop's nanoseconds): kept
    /// by the transfer itself (`Transfer.progress`), judged here.
    struct Progress {
        let method: String
        var isWarmUp = false
        /// libcurl has picked its connection.
        var connected = false
        /// Its client takes none of the response (libcurl's receiving is paused) since.
        var recvPaused = false
        var recvPausedSince: UInt64 = 0
        /// When its client last took some of the response.
        var lastRead: UInt64 = 0
        /// Why no spill file takes its bytes, when none does.
        var spillRefused: String?
        /// libcurl waits for request body its client has not sent, since.
        var sendPaused = false
        var sendPausedSince: UInt64 = 0
        /// When bytes last moved between reckerd and the upstream.
        var lastActivity: UInt64 = 0

        init(method: String) { self.method = method }

        /// Receiving pauses because the client read nothing more, or resumes: a pause starts
        /// its clock; its end starts the upstream's over (agent.readTimeout).
        mutating func pauseReceiving(_ paused: Bool, now: UInt64) {
            if paused && !recvPaused { recvPausedSince = now }
            if !paused && recvPaused { lastActivity = now }
            recvPaused = paused
        }

        /// Sending pauses because libcurl waits for body the client has not sent, or resumes
        /// as some arrives: a pause starts its clock; its end is the upstream's clock's start.
        mutating func pauseSending(_ paused: Bool, now: UInt64) {
            if paused && !sendPaused { sendPausedSince = now }
            if !paused && sendPaused { lastActivity = now }
            sendPaused = paused
        }
    }

    /// How long a client that reads nothing may hold a connection another request waits
    /// for, once no spill file can take its bytes (README, "limits.spillUserMax").
    static let stalledReaderGrace: UInt64 = 2_000_000_000

    /// The error a running transfer ends with for standing still too long, or nil.
    /// `othersWait` says whether other requests wait for a connection to its domain (asked
    /// only when it matters).
    static func stall(_ p: Progress, now: UInt64, bodyTimeoutMs: Int, readTimeoutMs: Int, othersWait: () -> Bool) -> ReckerError? {
        let limit = UInt64(bodyTimeoutMs) * 1_000_000
        func since(_ instant: UInt64) -> UInt64 { now > instant ? now - instant : 0 }
        func reached(_ message: String) -> ReckerError {
            ReckerError(.timeout, message, mayHaveReachedUpstream: true, retrySafe: RequestValidator.isSafeMethod(p.method))
        }
        if p.recvPaused && since(p.recvPausedSince) >= limit {
            return reached("the client read none of the response for \(bodyTimeoutMs) ms (limits.bodyTimeout); its upstream connection is freed")
        }
        // A client that reads nothing while another request waits for its connection, and
        // whose bytes no spill file can take (its budget is full, or spilling is off), is the
        // one that waits: after a grace its response fails, so one user's client that never
        // reads slows only that user (not every user of the domain until bodyTimeout).
        if p.recvPaused && !p.isWarmUp, let refused = p.spillRefused,
           since(max(p.recvPausedSince, p.lastRead)) >= stalledReaderGrace, othersWait() {
            return reached("the client read none of the response for \(stalledReaderGrace / 1_000_000) ms while other requests waited for its upstream connection, and \(refused); the connection is freed for them")
        }
        if p.sendPaused && since(p.sendPausedSince) >= limit {
            return reached("the client sent no request body for \(bodyTimeoutMs) ms (limits.bodyTimeout)")
        }
        // The upstream's side: nothing moved while reckerd waited on the upstream, not the
        // client (agent.readTimeout; a connect is connectTimeout's).
        if !p.recvPaused && !p.sendPaused && !p.isWarmUp && p.connected && since(p.lastActivity) >= UInt64(readTimeoutMs) * 1_000_000 {
            return reached("nothing moved between reckerd and the upstream for \(readTimeoutMs) ms (agent.readTimeout)")
        }
        return nil
    }
}
