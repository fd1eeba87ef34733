import CReckerCurl
import Foundation
import ReckerCLI
import ReckerLoop
import ReckerPool
import ReckerProtocol
import ReckerSession
import Synchronization

/// Protocol v1 spoken to an in-process libcurl engine instead of the daemon: what `recker
/// --fallback` uses when no reckerd listens. Same checks at the door, same frames back,
/// nothing pooled beyond this one process.
final class DirectChannel: MessageChannel, TransferSink, @unchecked Sendable {
    let welcome = Message.Welcome(maxFrame: UInt32(Frame.defaultMaxLength), maxInFlight: 256, initialWindow: 256 * 1024)
    private let engine: CurlEngine
    /// Messages for `receive`, filled by the engine thread. Guarded by `lock`.
    private let inbox = Mutex<[Message]>([])
    private let arrived = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var streams: [UInt32: TransferID] = [:]
    private var byTransfer: [TransferID: UInt32] = [:]

    /// `CURL_CA_BUNDLE`, as curl reads it, names a CA bundle to trust instead of the system's.
    /// As curl, no destination is refused by policy: this process serves one command line.
    init(_ settings: DirectSettings) throws {
        if let refusal = Libcurl.refusal { throw ReckerError(.internalError, refusal) }
        var options = PoolOptions()
        if let ca = ProcessInfo.processInfo.environment["CURL_CA_BUNDLE"], !ca.isEmpty { options.caFile = ca }
        options.denyLinkLocal = false
        var own = ProcessOnlyOptions()
        own.unixSocketPath = settings.unixSocket
        own.insecure = settings.insecure
        if let ca = settings.caFile { options.caFile = ca }
        own.caPath = settings.caPath
        own.resolve = settings.resolve
        own.connectTo = settings.connectTo
        if let proxy = settings.proxy, !proxy.isEmpty { options.upstreamProxy = proxy }
        options.noProxy = settings.noProxy
        own.proxyUser = settings.proxyUser
        switch settings.httpVersion {
        case .http10: own.httpVersion = Int(CURL_HTTP_VERSION_1_0)
        case .http11: own.httpVersion = Int(CURL_HTTP_VERSION_1_1)
        case .http2: own.httpVersion = Int(CURL_HTTP_VERSION_2_0)
        case .http2PriorKnowledge: own.httpVersion = Int(CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE)
        case nil: break
        }
        own.clientCert = settings.cert
        own.clientKey = settings.key
        own.ipResolve = settings.ipVersion.map { $0 == 4 ? Int(CURL_IPRESOLVE_V4) : Int(CURL_IPRESOLVE_V6) }
        var floor = settings.minTLS13 ? Int(CURL_SSLVERSION_TLSv1_3) : Int(CURL_SSLVERSION_DEFAULT)
        switch settings.tlsMax {
        case "1.0": floor |= Int(CURL_SSLVERSION_MAX_TLSv1_0)
        case "1.1": floor |= Int(CURL_SSLVERSION_MAX_TLSv1_1)
        case "1.2": floor |= Int(CURL_SSLVERSION_MAX_TLSv1_2)
        case "1.3": floor |= Int(CURL_SSLVERSION_MAX_TLSv1_3)
        default: break
        }
        if floor != 0 { own.sslVersion = floor }
        own.ciphers = settings.ciphers
        options.processOnly = own
        engine = try CurlEngine(options: options)
    }

    deinit { engine.shutdown() }

    /// Stops the engine and waits for its thread's end (again: nothing).
    func stop() { engine.shutdown() }

    func send(_ messages: [Message]) throws(ReckerError) {
        for m in messages { try send(m) }
    }

    func send(_ message: Message) throws(ReckerError) {
        switch message {
        case .requestHead(let id, let head, let end):
            do {
                let target = try RequestValidator.validate(head)
                // The stream is known by its transfer before the engine starts it: the engine
                // thread may answer before `start` returns (a request lost its answer so, one
                // run in a few hundred under load, and recker waited for ever).
                let t = engine.makeTransferID()
                lock.lock()
                streams[id] = t
                byTransfer[t] = id
                lock.unlock()
                engine.start(t, EngineRequest(head: head, target: target, arrival: MonotonicClock.nanoseconds(), hasBody: !end), sink: self)
            } catch {
                deliver(.error(stream: id, error))
            }
        case .requestBody(let id, let data, let end):
            if let t = transfer(id) { engine.sendBody(t, data, end: end) }
        case .windowUpdate(let id, let inc):
            if let t = transfer(id) { engine.consumed(t, bytes: Int(inc)) }
        case .cancel(let id):
            if let t = transfer(id) { engine.cancel(t) }
        case .statsRequest(let id, _):
            deliver(.error(stream: id, ReckerError(.daemonUnavailable, "no reckerd running: no pool statistics")))
        case .ping(let o):
            deliver(.pong(o))
        default:
            break
        }
    }

    func receive() throws(ReckerError) -> Message {
        while true {
            if let m = inbox.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { return m }
            arrived.wait()
        }
    }

    private func transfer(_ stream: UInt32) -> TransferID? {
        lock.lock()
        defer { lock.unlock() }
        return streams[stream]
    }

    private func stream(_ t: TransferID, ending: Bool) -> UInt32? {
        lock.lock()
        defer { lock.unlock() }
        guard let s = byTransfer[t] else { return nil }
        if ending {
            byTransfer[t] = nil
            streams[s] = nil
        }
        return s
    }

    private func deliver(_ m: Message) {
        inbox.withLock { $0.append(m) }
        arrived.signal()
    }

    // MARK: TransferSink (engine thread)

    func transferHead(_ id: TransferID, _ head: ResponseHead) {
        if let s = stream(id, ending: false) { deliver(.responseHead(stream: s, head)) }
    }

    func transferBody(_ id: TransferID, _ chunk: [UInt8]) {
        if let s = stream(id, ending: false) { deliver(.responseBody(stream: s, chunk)) }
    }

    func transferEnd(_ id: TransferID, _ end: ResponseEnd) {
        if let s = stream(id, ending: true) { deliver(.responseEnd(stream: s, end)) }
    }

    func transferFailed(_ id: TransferID, _ error: ReckerError) {
        if let s = stream(id, ending: true) { deliver(.error(stream: s, error)) }
    }

    func transferBodySent(_ id: TransferID, bytes: Int) {
        if let s = stream(id, ending: false) { deliver(.windowUpdate(stream: s, increment: UInt32(bytes))) }
    }
}
