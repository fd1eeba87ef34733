import ReckerProtocol
import ReckerSession

/// Where the engine delivers a request's results. Called on the engine thread, in order
/// per transfer; implementations hand the work to their own thread and return at once.
package protocol TransferSink: AnyObject, Sendable {
    func transferHead(_ id: TransferID, _ head: ResponseHead)
    func transferBody(_ id: TransferID, _ chunk: [UInt8])
    func transferEnd(_ id: TransferID, _ end: ResponseEnd)
    func transferFailed(_ id: TransferID, _ error: ReckerError)
    /// `bytes` of request body were handed upstream, so the client may send that much more.
    func transferBodySent(_ id: TransferID, bytes: Int)
    /// The client behind this sink has gone: its requests still waiting are never started.
    /// Read on the engine thread, so it must be safe to read from any thread.
    var isGone: Bool { get }
}

extension TransferSink {
    /// Sinks whose owner waits for every answer never go.
    package var isGone: Bool { false }
}
