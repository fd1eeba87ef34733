import ReckerLoop
import ReckerPool
import ReckerProtocol
import ReckerSession

/// What a client connection hears from the engine about its transfers.
protocol EngineEvents: AnyObject {
    func engineHead(_ id: TransferID, _ head: ResponseHead)
    func engineBody(_ id: TransferID, _ chunk: [UInt8])
    func engineEnd(_ id: TransferID, _ end: ResponseEnd)
    func engineFailed(_ id: TransferID, _ error: ReckerError)
    func engineBodySent(_ id: TransferID, bytes: Int)
}

/// The engine's handle on a client connection (binary or HTTP front). The engine and the
/// connections share the loop's thread, so events go straight to the connection; it is held
/// weakly, as transfers outlive their connection by a moment. `@unchecked Sendable`: used
/// on the loop thread only.
final class ConnectionSink<Connection: EngineEvents>: TransferSink, @unchecked Sendable {
    weak var connection: Connection?
    private let loop: EventLoop
    private var gone = false

    init(loop: EventLoop) { self.loop = loop }

    /// The client's connection closed: what it still had queued is never started.
    func markGone() { gone = true }

    var isGone: Bool { gone }

    func transferHead(_ id: TransferID, _ head: ResponseHead) {
        loop.assertOnLoop()
        connection?.engineHead(id, head)
    }

    func transferBody(_ id: TransferID, _ chunk: [UInt8]) {
        loop.assertOnLoop()
        connection?.engineBody(id, chunk)
    }

    func transferEnd(_ id: TransferID, _ end: ResponseEnd) {
        loop.assertOnLoop()
        connection?.engineEnd(id, end)
    }

    func transferFailed(_ id: TransferID, _ error: ReckerError) {
        loop.assertOnLoop()
        connection?.engineFailed(id, error)
    }

    func transferBodySent(_ id: TransferID, bytes: Int) {
        loop.assertOnLoop()
        connection?.engineBodySent(id, bytes: bytes)
    }
}
