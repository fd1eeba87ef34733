import CReckerCurl
import Foundation
import ReckerProtocol
import Synchronization

/// The libcurl engine: one thread owns a multi handle, so every request to a domain shares
/// that domain's warm connections, whichever client or process sent it.
///
/// Thread confinement: `transfers`, `connections` and the multi handle are touched only on
/// the engine thread. Other threads talk to it through `mailbox` (then wake it) and read
/// `stats` under its mutex. That split is why the type is `@unchecked Sendable`.
package final class CurlEngine: @unchecked Sendable {
    package let options: PoolOptions
    private let multi: MultiHandle
    private let driver: any EngineDriver
    private let mailbox = Mutex<[Command]>([])
    private let statsBox = Mutex(PoolStats())
    private let nextTransfer = Atomic<UInt64>(1)
    private let stopped = Mutex<Bool>(false)
    private var thread: Thread?
    private let exited = DispatchSemaphore(value: 0)

    private var transfers: [TransferID: Transfer] = [:]
    var connections: [Int32: ConnectionRecord] = [:]
    var nextConnectionID: UInt64 = 1
    private var stopping = false
    /// Engine loop passes, for a watchdog to see that the loop turns.
    package let heartbeat = Atomic<UInt64>(0)

    enum Command {
        case start(TransferID, EngineRequest, any TransferSink)
        case body(TransferID, [UInt8], end: Bool)
        case consumed(TransferID, Int)
        case cancel(TransferID)
        case failAll(ReckerError)
        case stop
    }

    /// Starts the engine thread. Fails only when libcurl cannot make a multi handle.
    package init(options: PoolOptions) throws {
        Self.globalInit
        guard let m = MultiHandle() else { throw ReckerError(.internalError, "curl_multi_init failed") }
        self.options = options
        multi = m
        driver = PollDriver(multi: m)
        multi.set(CURLMOPT_MAXCONNECTS, options.maxCachedConnections)
        if options.perDomainPooling {
            multi.set(CURLMOPT_MAX_HOST_CONNECTIONS, options.connections)
        } else {
            multi.set(CURLMOPT_MAX_TOTAL_CONNECTIONS, options.connections)
        }
        multi.set(CURLMOPT_PIPELINING, options.http2Enabled ? Int(CURLPIPE_MULTIPLEX) : 0)
        multi.set(CURLMOPT_MAX_CONCURRENT_STREAMS, options.http2MaxConcurrentStreams)
        let t = Thread { [unowned self] in self.run() }
        t.name = "reckerd-engine"
        thread = t
        t.start()
    }

    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        signal(SIGPIPE, SIG_IGN)
    }()

    // MARK: - the interface other threads use

    /// Starts a request; its results go to `sink`.
    package func start(_ request: EngineRequest, sink: any TransferSink) -> TransferID {
        let id = nextTransfer.wrappingAdd(1, ordering: .relaxed).oldValue
        post(.start(id, request, sink))
        return id
    }

    /// More request body from the client.
    package func sendBody(_ id: TransferID, _ chunk: [UInt8], end: Bool) { post(.body(id, chunk, end: end)) }

    /// The client has been sent `bytes` of this response, so the engine may read more.
    package func consumed(_ id: TransferID, bytes: Int) { post(.consumed(id, bytes)) }

    /// Stops a request; its sink gets `CANCELLED`.
    package func cancel(_ id: TransferID) { post(.cancel(id)) }

    /// Fails every request in flight with `error` (used when a drain runs out of time).
    package func failAll(_ error: ReckerError) { post(.failAll(error)) }

    /// A snapshot of the counters.
    package var stats: PoolStats { statsBox.withLock { $0 } }

    /// Requests in flight now.
    package var inFlight: Int { statsBox.withLock { $0.total.requestsInFlight } }

    /// Ends every transfer, closes every connection and joins the engine thread.
    package func shutdown() {
        let first = stopped.withLock { s -> Bool in
            defer { s = true }
            return !s
        }
        guard first else { return }
        post(.stop)
        exited.wait()
    }

    private func post(_ command: Command) {
        let wasEmpty = mailbox.withLock { box -> Bool in
            box.append(command)
            return box.count == 1
        }
        if wasEmpty { driver.wake() }
    }

    // MARK: - the engine thread

    private func run() {
        while true {
            heartbeat.wrappingAdd(1, ordering: .relaxed)
            let commands = mailbox.withLock { box -> [Command] in
                defer { box.removeAll(keepingCapacity: true) }
                return box
            }
            for c in commands { handle(c) }
            driver.perform()
            drainMessages()
            if stopping && transfers.isEmpty { break }
            driver.wait(timeoutMs: 1000)
        }
        curl_multi_cleanup(multi.raw)
        exited.signal()
    }

    private func handle(_ command: Command) {
        switch command {
        case .start(let id, let request, let sink):
            begin(id, request, sink)
        case .body(let id, let chunk, let end):
            guard let t = transfers[id] else { return }
            t.uploadReceived += UInt64(chunk.count)
            if let expected = t.request.head.bodyLength,
               t.uploadReceived > expected || (end && t.uploadReceived != expected) {
                finish(t, error: ReckerError(.bodyLengthMismatch,
                                             "request body was \(t.uploadReceived)\(end ? "" : "+") bytes, head said \(expected)"))
                return
            }
            if !chunk.isEmpty { t.uploadQueue.append(chunk) }
            if end { t.uploadEnded = true }
            if t.sendPaused {
                t.sendPaused = false
                curl_easy_pause(t.easy.raw, t.pauseMask)
            }
        case .consumed(let id, let n):
            guard let t = transfers[id] else { return }
            t.outstanding -= n
            if t.recvPaused && t.outstanding <= options.maxResponseBuffer / 2 {
                t.recvPaused = false
                curl_easy_pause(t.easy.raw, t.pauseMask)
            }
        case .cancel(let id):
            guard let t = transfers[id] else { return }
            finish(t, error: ReckerError(.cancelled, "request cancelled", mayHaveReachedUpstream: true,
                                         retrySafe: RequestValidator.isSafeMethod(t.request.head.method)))
        case .failAll(let error):
            for t in Array(transfers.values) { finish(t, error: error) }
        case .stop:
            stopping = true
            let error = ReckerError(.shuttingDown, "reckerd is stopping", mayHaveReachedUpstream: true, retrySafe: false)
            for t in Array(transfers.values) { finish(t, error: error) }
        }
    }

    private func begin(_ id: TransferID, _ request: EngineRequest, _ sink: any TransferSink) {
        if stopping {
            sink.transferFailed(id, ReckerError(.shuttingDown, "reckerd is stopping"))
            return
        }
        guard let easy = EasyHandle() else {
            sink.transferFailed(id, ReckerError(.internalError, "curl_easy_init failed"))
            return
        }
        let t = Transfer(id: id, request: request, sink: sink, easy: easy, engine: self)
        configure(t)
        transfers[id] = t
        t.startedAt = MonotonicClock.nanoseconds()
        statsBox.withLock { $0.update(request.target.domain) { $0.requestsTotal += 1; $0.requestsInFlight += 1 } }
        let rc = curl_multi_add_handle(multi.raw, easy.raw)
        if rc != CURLM_OK {
            finish(t, error: ReckerError(.internalError, "curl_multi_add_handle: \(String(cString: curl_multi_strerror(rc)))"))
        }
    }

    private func drainMessages() {
        var left: Int32 = 0
        while let msg = curl_multi_info_read(multi.raw, &left) {
            guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle else { continue }
            var raw: UnsafeMutableRawPointer?
            _ = recker_easy_getinfo_pointer(easy, CURLINFO_PRIVATE, &raw)
            guard let raw else { continue }
            let t = Unmanaged<Transfer>.fromOpaque(raw).takeUnretainedValue()
            let result = recker_msg_result(msg)
            if result == CURLE_OK {
                finish(t, error: nil)
            } else {
                let connected = t.easy.offset(CURLINFO_CONNECT_TIME_T) > 0 || t.easy.long(CURLINFO_NUM_CONNECTS) == 0
                let detail = String(decoding: t.errorBuffer.prefix { $0 != 0 }, as: UTF8.self)
                let text = detail.isEmpty ? String(cString: curl_easy_strerror(result)) : detail
                finish(t, error: .upstream(result, method: t.request.head.method, connected: connected, message: text))
            }
        }
    }

    /// Ends a transfer exactly once: tells its sink, counts it, frees its handle.
    private func finish(_ t: Transfer, error: ReckerError?) {
        guard !t.finished else { return }
        t.finished = true
        transfers[t.id] = nil
        if error == nil { t.sendHeadIfNeeded() }
        // Counted before the sink hears of it, so stats never lag an answer a client saw.
        statsBox.withLock {
            $0.update(t.request.target.domain) { s in
                s.requestsInFlight -= 1
                if error != nil { s.errorsTotal += 1 }
                s.bytesOut += Int(t.uploadReceived)
            }
        }
        if let error {
            t.sink.transferFailed(t.id, error)
        } else {
            t.sink.transferEnd(t.id, ResponseEnd(totalMicros: MonotonicClock.micros(since: t.request.arrival), bodyBytes: t.bodyBytes))
        }
        curl_multi_remove_handle(multi.raw, t.easy.raw)
        t.easy.cleanup()
        if let list = t.headerList { curl_slist_free_all(list) }
    }

    func noteBytesIn(_ n: Int, domain: String) {
        statsBox.withLock { $0.update(domain) { $0.bytesIn += n } }
    }

    func noteConnection(opened: Bool, domain: String) {
        statsBox.withLock {
            $0.update(domain) { s in
                if opened { s.connectionsCreated += 1; s.connectionsOpen += 1 } else { s.connectionsOpen -= 1 }
            }
        }
    }
}
