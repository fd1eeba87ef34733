import ReckerPool
import ReckerProtocol

/// The engine's handle on an HTTP front connection, as `SessionSink` is for the binary
/// front: events go straight to the connection on the loop's thread; it is held weakly.
/// `@unchecked Sendable`: used on the loop thread only.
final class HTTPFrontSink: TransferSink, @unchecked Sendable {
    weak var connection: HTTPFrontConnection?
    private var gone = false

    /// The client's connection closed: what it still had queued is never started.
    func markGone() { gone = true }

    var isGone: Bool { gone }

    func transferHead(_ id: TransferID, _ head: ResponseHead) { connection?.engineHead(id, head) }
    func transferBody(_ id: TransferID, _ chunk: [UInt8]) { connection?.engineBody(id, chunk) }
    func transferEnd(_ id: TransferID, _ end: ResponseEnd) { connection?.engineEnd(id, end) }
    func transferFailed(_ id: TransferID, _ error: ReckerError) { connection?.engineFailed(id, error) }
    func transferBodySent(_ id: TransferID, bytes: Int) { connection?.engineBodySent(id, bytes: bytes) }
}
