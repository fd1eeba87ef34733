import ReckerProtocol

/// Identifies one request inside the engine.
package typealias TransferID = UInt64

/// Identifies one client connection of the daemon (and, in a pool's queue, whose turn it is).
package typealias ClientID = UInt64

/// A request as the engine receives it: checked at the door already.
package struct EngineRequest: Sendable {
    package var head: RequestHead
    package var target: RequestValidator.Target
    /// When the request arrived (the loop's monotonic nanoseconds), for queue and total times.
    package var arrival: UInt64
    /// Whether a body follows in `sendBody` calls.
    package var hasBody: Bool
    /// Most response bytes held for this request before reading pauses, fixed for its
    /// whole life: the sink reports its progress against the same number, so a reload
    /// that changes the limit cannot leave the two sides waiting on each other. nil: the
    /// engine's `maxResponseBuffer` when the request starts.
    package var responseBuffer: Int?
    /// The client connection it came from: within a user, waiting requests are served by
    /// connection in turn.
    package var client: ClientID
    /// Whose turn it is among users: the daemon gives the client's uid (`TurnKey`), so a
    /// user with 200 connections gets no more turns than one with one. nil: `client`.
    package var user: ClientID?

    package init(head: RequestHead, target: RequestValidator.Target, arrival: UInt64, hasBody: Bool,
                 responseBuffer: Int? = nil, client: ClientID = 0, user: ClientID? = nil) {
        self.head = head
        self.target = target
        self.arrival = arrival
        self.hasBody = hasBody
        self.responseBuffer = responseBuffer
        self.client = client
        self.user = user
    }
}

/// What a session asks of the engine for its requests; the connection hands it on as it is
/// (`CurlEngine.perform`). Equal when of the same kind for the same transfer (and, but for a
/// start's request, the same values).
package enum EngineCommand: Equatable, Sendable {
    /// Start a request under an id the session was given with the event that started it.
    case start(TransferID, EngineRequest)
    case sendBody(TransferID, [UInt8], end: Bool)
    /// The client was sent this many more bytes of a response: the engine may read on.
    case consumed(TransferID, Int)
    case cancel(TransferID)

    package static func == (a: EngineCommand, b: EngineCommand) -> Bool {
        switch (a, b) {
        case (.start(let x, _), .start(let y, _)): x == y
        case (.sendBody(let x, let p, let e), .sendBody(let y, let q, let f)): x == y && p == q && e == f
        case (.consumed(let x, let n), .consumed(let y, let m)): x == y && n == m
        case (.cancel(let x), .cancel(let y)): x == y
        default: false
        }
    }
}
