/// A blocking, message-at-a-time channel to something that speaks protocol v1: the daemon
/// over its socket (`ReckerConnection`), or an in-process stand-in (`recker --fallback`).
/// `recker` runs on it; applications use `ReckerClient`.
public protocol MessageChannel: AnyObject {
    /// The limits the other side announced.
    var welcome: Message.Welcome { get }
    /// Sends one message.
    func send(_ message: Message) throws(ReckerError)
    /// Sends several messages at once, in order.
    func send(_ messages: [Message]) throws(ReckerError)
    /// Blocks until the next message arrives.
    func receive() throws(ReckerError) -> Message
}

extension ReckerConnection: MessageChannel {}
