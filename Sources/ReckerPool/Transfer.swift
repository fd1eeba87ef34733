import CReckerCurl
import Glibc
import ReckerProtocol
import ReckerSession

/// One request in flight inside the engine: its easy handle and everything between the
/// client and libcurl. Engine-thread confined, like the engine's other state.
final class Transfer {
    let id: TransferID
    let request: EngineRequest
    let sink: any TransferSink
    let easy: EasyHandle
    unowned let engine: CurlEngine
    var headerList: UnsafeMutablePointer<curl_slist>?

    /// The response head as it arrives: reset at each status line, so only the final
    /// response's head (after 1xx and followed redirects) is kept.
    lazy var responseHead = ResponseHeadReader(maxCount: engine.options.headerLimits.count, maxBytes: engine.options.headerLimits.bytes)
    /// Why the response head was refused, when it was: why the transfer failed.
    var headRefused: String?
    /// A HEAD sent with a body got its final head: the answer is whole (`onHeader`).
    var headOnlyAnswered = false

    /// An error for this request once it may have reached the upstream: retry-safe only by
    /// its method (RFC 9110 §9.2.1; PROTOCOL.md 5).
    func reachedError(_ code: ReckerError.Code, _ message: String, detail: UInt32 = 0) -> ReckerError {
        ReckerError(code, message, detail: detail, mayHaveReachedUpstream: true, retrySafe: RequestValidator.isSafeMethod(request.head.method))
    }

    /// The request's host is an address literal: nothing is looked up (PROTOCOL.md 2.5 says
    /// namelookup_us is 0 then; libcurl reports the time it took to parse it).
    var hostIsAddress: Bool {
        // The final hop's host: after a redirect, not the request's own.
        let host = easy.string(CURLINFO_EFFECTIVE_URL).flatMap { try? RequestValidator.parse(url: $0) }?.host ?? request.target.host
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Why the final answer is refused for an interim status (an unasked-for 101, say,
    /// followed by another protocol's bytes), or nil (RFC 9110 §15.2: 1xx is never final).
    var interimAsFinal: String? {
        let status = easy.long(CURLINFO_RESPONSE_CODE)
        return (100 ..< 200).contains(status) ? "the upstream answered with the interim status \(status) as its final answer" : nil
    }
    var headSent = false
    var startedAt: UInt64 = 0
    /// What the stall rules judge (`TransferPolicy.stall`): pauses either way, the client's
    /// last read, the last byte that moved between libcurl and this transfer (head, body
    /// either way), why no spill file takes its bytes.
    var progress: TransferPolicy.Progress

    /// Request body chunks from the client not yet taken by libcurl.
    var uploadQueue: [[UInt8]] = []
    var uploadOffset = 0
    /// Chunks libcurl has taken, kept while their total stays within `replayLimit`, so a
    /// resend or a redirect that keeps the body can rewind to its first byte.
    var uploadTaken: [[UInt8]] = []
    var uploadTakenBytes = 0
    var replayable = true
    /// Body bytes handed to libcurl since the last rewind, and the most ever handed: only
    /// bytes beyond that high-water mark widen the client's window.
    var uploadRead = 0
    var uploadHighWater = 0
    var uploadEnded = false
    var uploadReceived: UInt64 = 0

    /// What the client is not ready for while others wait for the connection: written here
    /// so the upstream connection can go back to the pool (`CurlEngine.spill`).
    var spill: SpillFile?
    /// The upstream part is over; the end reaches the client after the spilled bytes.
    var pendingEnd: ResponseEnd?
    /// Response bytes delivered to the sink and not yet written to the client, and the
    /// most that may be (the request's own limit, or the engine's when it started).
    var outstanding = 0
    let responseBuffer: Int
    /// Whose spill budget this transfer draws on: the request's user, else its client.
    var spillOwner: ClientID { request.user ?? request.client }
    var bodyBytes: UInt64 = 0
    /// The connection this request went out on, once libcurl has picked it.
    var connection: ConnectionID? {
        didSet { progress.connected = connection != nil }
    }
    /// Why the destination policy refused an address this transfer would have connected to.
    var deniedDestination: String?
    /// errno of a `socket()` that failed for this transfer: reckerd's own limits, not the
    /// upstream's fault.
    var socketError: Int32?
    /// The sockets libcurl opened for this transfer (descriptor, connection id).
    var openedSockets: [(fd: Int32, id: ConnectionID)] = []
    /// A status line arrived since the request last went out: a later send is a redirect's
    /// next hop, not a resend after a dead connection.
    var sawResponse = false
    /// The request has gone out at least once.
    var sent = false
    /// An earlier transfer of the same request (one the engine started over) went out.
    var sentBefore = false
    /// Times libcurl sent the request again after its connection died (at most once), and
    /// whether that resend was stopped to go out on a fresh connection instead.
    var resends = 0
    var restartFresh = false
    /// libcurl wanted to send the request again after a reused connection died, and the
    /// replay policy refused (`RequestValidator.mayResend`).
    var resendRefused = false
    /// libcurl's resend followed an HTTP/2 stream's end: a dead connection, GOAWAY or
    /// REFUSED_STREAM, which libcurl 8.14 does not tell apart outside its trace.
    var resentAfterHTTP2 = false
    var attemptOnReusedHTTP2 = false
    /// Attempts the upstream refused unprocessed (REFUSED_STREAM on a fresh connection).
    var attemptsRefused = 0
    /// Every attempt that went out was refused unprocessed: the request never reached the
    /// upstream's application, whatever `sent` says.
    var neverProcessed: Bool { attemptsRefused > 0 && attemptsRefused == resends + 1 && !sentBefore }
    /// Why a redirect hop was not followed, when it was not.
    var redirectRefused: String?
    /// The request last went out on a connection that had carried requests before.
    var startedOnReuse = false
    /// Times the engine started this request over on a fresh connection (at most once), and
    /// whether this transfer must not reuse a connection.
    var restarts = 0
    var freshConnection = false
    /// A request the engine made itself to open a warm connection; no client waits for it.
    var isWarmUp: Bool {
        get { progress.isWarmUp }
        set { progress.isWarmUp = newValue }
    }
    var finished = false
    /// libcurl writes its detailed error text here (CURLOPT_ERRORBUFFER).
    let errorBuffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    init(id: TransferID, request: EngineRequest, sink: any TransferSink, easy: EasyHandle, engine: CurlEngine) {
        self.id = id
        self.request = request
        self.sink = sink
        self.easy = easy
        self.engine = engine
        progress = TransferPolicy.Progress(method: request.head.method)
        responseBuffer = request.responseBuffer ?? engine.options.maxResponseBuffer
        errorBuffer.initialize(repeating: 0)
    }

    deinit { errorBuffer.deallocate() }

    /// The pause bits libcurl should hold now.
    var pauseMask: Int32 {
        (progress.recvPaused ? Int32(CURLPAUSE_RECV) : 0) | (progress.sendPaused ? Int32(CURLPAUSE_SEND) : 0)
    }

    // MARK: callbacks, called by libcurl on the engine thread

    /// Takes one header line; false (the transfer then fails) when the head is refused
    /// (`ResponseHeadReader`), which `headRefused` then says why.
    func onHeader(_ line: UnsafeBufferPointer<UInt8>) -> Bool {
        progress.lastActivity = engine.loop.now
        switch responseHead.read(line) {
        case .status:
            sawResponse = true
            // RFC 9110 §15.4.4: a 303 is followed with a GET. libcurl drops the body of an
            // upload itself but keeps a custom method (a PUT was followed as a body-less PUT;
            // CURLFOLLOW_OBEYCODE would drop PATCH's method on a 307 as well).
            if responseHead.status == 303, (request.head.options.followRedirects ?? 0) > 0,
               !["GET", "HEAD", "POST"].contains(request.head.method) {
                easy.set(CURLOPT_CUSTOMREQUEST, pointer: nil)
            }
            return true
        case .ok:
            // A HEAD sent with a body goes out as an upload, and libcurl would then wait for
            // a response body that never comes (RFC 9110 §9.3.2): its final head is the
            // whole answer, and the transfer is ended here.
            if responseHead.complete && request.hasBody && request.head.method == "HEAD" && easy.long(CURLINFO_RESPONSE_CODE) >= 200 {
                headOnlyAnswered = true
                return false
            }
            return true
        case .refuse(let why):
            headRefused = why
            return false
        }
    }

    /// Returns the bytes taken, or CURL_WRITEFUNC_PAUSE when the client is too far behind
    /// and the bytes cannot go to the spill file instead.
    func onBody(_ data: UnsafeBufferPointer<UInt8>) -> Int {
        if !headSent, let why = interimAsFinal {
            headRefused = why
            return 0
        }
        progress.lastActivity = engine.loop.now
        if outstanding >= responseBuffer || (spill?.pending ?? 0) > 0 {
            // What was taken before goes first; the spill file holds only what follows it.
            deliverBody()
            guard engine.spill(self, data) else {
                progress.pauseReceiving(true, now: engine.loop.now)
                return Int(CURL_WRITEFUNC_PAUSE)
            }
            return data.count
        }
        sendHeadIfNeeded()
        outstanding += data.count
        bodyBytes += UInt64(data.count)
        engine.count(request.target.domain) { $0.bytesIn += data.count }
        if pendingBody.isEmpty { engine.bodyTaken(self) }
        pendingBody.append(contentsOf: data)
        if pendingBody.count >= Self.deliverAt { deliverBody() }
        return data.count
    }

    /// Hands the sink the body bytes taken since the last delivery. libcurl calls the write
    /// callback once per chunk of a chunked response: an upstream sending 1-byte chunks
    /// would otherwise cost a frame, an allocation and a queue entry per byte.
    func deliverBody() {
        guard !pendingBody.isEmpty else { return }
        let chunk = pendingBody
        pendingBody = []
        sink.transferBody(id, chunk)
    }

    /// Body bytes taken from libcurl and not yet handed to the sink: delivered when the
    /// engine's call into libcurl returns, before the end, or at this size.
    var pendingBody: [UInt8] = []
    static let deliverAt = 64 * 1024

    /// Takes over the request body state of `old`, which is being started over: the body
    /// from its first byte, and the client's window as far as it was already widened.
    func carryBody(from old: Transfer) {
        uploadQueue = old.uploadTaken + old.uploadQueue
        uploadEnded = old.uploadEnded
        uploadReceived = old.uploadReceived
        uploadHighWater = old.uploadHighWater
        uploadTakenBytes = 0
        replayable = old.replayable
    }

    /// Fills libcurl's upload buffer from the client's chunks, or pauses until more arrive.
    func onRead(_ buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
        var written = 0
        while written < buffer.count, let chunk = uploadQueue.first {
            let n = min(buffer.count - written, chunk.count - uploadOffset)
            for i in 0 ..< n { buffer[written + i] = chunk[uploadOffset + i] }
            written += n
            uploadOffset += n
            if uploadOffset == chunk.count {
                uploadQueue.removeFirst()
                uploadOffset = 0
                keepForReplay(chunk)
            }
        }
        if written > 0 {
            progress.lastActivity = engine.loop.now
            uploadRead += written
            if uploadRead > uploadHighWater {
                sink.transferBodySent(id, bytes: uploadRead - uploadHighWater)
                uploadHighWater = uploadRead
            }
            return written
        }
        if uploadEnded { return 0 }
        progress.pauseSending(true, now: engine.loop.now)
        return Int(CURL_READFUNC_PAUSE)
    }

    private func keepForReplay(_ chunk: [UInt8]) {
        guard replayable else { return }
        uploadTakenBytes += chunk.count
        if uploadTakenBytes > responseBuffer {
            replayable = false
            uploadTaken = []
        } else {
            uploadTaken.append(chunk)
        }
    }

    /// libcurl rewinds the body (CURLOPT_SEEKFUNCTION) to send it again: for a resend the
    /// replay policy allows, or a redirect that keeps the method and body. Only the start
    /// is ever asked for; a body larger than the replay limit cannot go back.
    func onSeek(offset: Int64, origin: Int32) -> Int32 {
        guard offset == 0, origin == SEEK_SET, replayable else { return CURL_SEEKFUNC_CANTSEEK }
        uploadQueue.insert(contentsOf: uploadTaken, at: 0)
        uploadTaken = []
        uploadTakenBytes = 0
        uploadOffset = 0
        uploadRead = 0
        return CURL_SEEKFUNC_OK
    }

    func sendHeadIfNeeded() {
        guard !headSent else { return }
        headSent = true
        let status = easy.long(CURLINFO_RESPONSE_CODE)
        let version: UInt8 = switch easy.long(CURLINFO_HTTP_VERSION) {
        case Int(CURL_HTTP_VERSION_1_0): 10
        case Int(CURL_HTTP_VERSION_2_0): 20
        case Int(CURL_HTTP_VERSION_3): 30
        default: 11
        }
        let reused = easy.long(CURLINFO_NUM_CONNECTS) == 0
        engine.learned(version: version, domain: request.target.domain, connection: connection)
        let connect = easy.offset(CURLINFO_CONNECT_TIME_T)
        let appConnect = easy.offset(CURLINFO_APPCONNECT_TIME_T)
        let firstByte = easy.offset(CURLINFO_STARTTRANSFER_TIME_T)
        let head = ResponseHead(
            status: UInt16(clamping: status), httpVersion: version, connectionID: connection ?? 0, reused: reused,
            queueMicros: UInt32(clamping: (startedAt > request.arrival ? startedAt - request.arrival : 0) / 1000),
            connectMicros: reused ? 0 : UInt32(clamping: connect),
            tlsMicros: reused || appConnect == 0 ? 0 : UInt32(clamping: max(0, appConnect - connect)),
            firstByteMicros: UInt32(clamping: firstByte), headers: responseHead.headers,
            facts: ResponseFacts(reason: responseHead.reason, remoteIP: easy.string(CURLINFO_PRIMARY_IP) ?? "",
                                 remotePort: UInt16(exactly: easy.long(CURLINFO_PRIMARY_PORT)) ?? 0,
                                 localIP: easy.string(CURLINFO_LOCAL_IP) ?? "",
                                 localPort: UInt16(exactly: easy.long(CURLINFO_LOCAL_PORT)) ?? 0,
                                 namelookupMicros: reused || hostIsAddress ? 0 : UInt32(clamping: easy.offset(CURLINFO_NAMELOOKUP_TIME_T))))
        sink.transferHead(id, head)
    }
}
