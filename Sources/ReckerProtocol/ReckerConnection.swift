#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking protocol connection to reckerd: handshake, then messages in and out.
///
/// Usable on its own, without Swift Concurrency or Foundation; the `recker` CLI is built on
/// it. Not thread-safe: one thread at a time, or a lock around it (as `ReckerClient` does).
package final class ReckerConnection {
    package let socket: UnixSocket
    private var reader: FrameReader
    private var readBuffer: [UInt8] = []
    private let socketPath: String
    private let handshakeTimeoutMs: Int
    /// WELCOME once read; the handshake's failure, once seen, fails every later call.
    private var welcomed: Message.Welcome?
    private var handshakeError: ReckerError?

    /// The daemon's limits, from its WELCOME (read now if it has not been yet). Should the
    /// handshake fail, the smallest limits a daemon can announce, and the next `send` or
    /// `receive` throws the failure.
    package var welcome: Message.Welcome {
        if let welcomed { return welcomed }
        do throws(ReckerError) { return try completeHandshake() } catch {
            return Message.Welcome(maxFrame: 4096, maxInFlight: 1, initialWindow: 1024)
        }
    }

    /// How long a client waits for WELCOME unless told otherwise: a daemon out of
    /// descriptors accepts no connection, and the kernel's backlog would hold one forever.
    package static let defaultHandshakeTimeoutMs = 3000

    /// Connects and performs the handshake, waiting at most `handshakeTimeoutMs` for the
    /// daemon's WELCOME (`DAEMON_UNAVAILABLE` after that). With `waitForWelcome` false, only
    /// HELLO is sent: what is sent next follows it at once, before WELCOME (PROTOCOL.md 2.2),
    /// and WELCOME is read when first needed, which saves a round trip per connection.
    /// A socket in a directory others could write to is refused (`SocketPaths.untrustedDirectory`).
    package init(socketPath: String, handshakeTimeoutMs: Int = ReckerConnection.defaultHandshakeTimeoutMs,
                 waitForWelcome: Bool = true) throws(ReckerError) {
        if let why = SocketPaths.untrustedDirectory(of: socketPath) {
            throw ReckerError(.daemonUnavailable, "refusing the socket \(socketPath): \(why); another user could stand in for reckerd there")
        }
        self.socketPath = socketPath
        self.handshakeTimeoutMs = handshakeTimeoutMs
        socket = try UnixSocket(connectingTo: socketPath)
        reader = FrameReader()
        try socket.write(Message.hello(Message.Hello(features: Message.Feature.limits | Message.Feature.facts)).encoded)
        if waitForWelcome { _ = try completeHandshake() }
    }

    /// Reads WELCOME (once), within the handshake timeout.
    @discardableResult
    private func completeHandshake() throws(ReckerError) -> Message.Welcome {
        if let welcomed { return welcomed }
        if let handshakeError { throw handshakeError }
        do throws(ReckerError) {
            let w = try readWelcome()
            welcomed = w
            reader.maxLength = Int(w.maxFrame)
            return w
        } catch {
            handshakeError = error
            throw error
        }
    }

    private func readWelcome() throws(ReckerError) -> Message.Welcome {
        socket.setReceiveTimeout(milliseconds: handshakeTimeoutMs)
        var first: Frame?
        while first == nil {
            if let f = try reader.next() { first = f; break }
            readBuffer.removeAll(keepingCapacity: true)
            let n: Int
            do { n = try socket.read(into: &readBuffer) } catch {
                guard error.detail == UInt32(EAGAIN) || error.detail == UInt32(EWOULDBLOCK) else { throw error }
                socket.close()
                throw ReckerError(.daemonUnavailable, "reckerd at \(socketPath) did not answer within \(handshakeTimeoutMs) ms (it may be out of descriptors or overloaded)")
            }
            if n == 0 {
                throw ReckerError(.connectionLost, "reckerd closed the connection during the handshake")
            }
            if readBuffer.starts(with: Array("HTTP/".utf8)) {
                // The HTTP front's socket (or another HTTP server) answered HELLO as a request.
                socket.close()
                throw ReckerError(.badHandshake, "\(socketPath) speaks HTTP, not reckerd's protocol: send HTTP to it (curl --unix-socket \(socketPath) URL), or give recker the protocol socket (--socket, RECKER_SOCKET)")
            }
            reader.append(readBuffer)
        }
        socket.setReceiveTimeout(milliseconds: 0)
        switch try Message(frame: first!) {
        case .welcome(let w) where w.version == Message.version:
            return w
        case .welcome(let w):
            throw ReckerError(.unsupportedVersion, "reckerd chose protocol version \(w.version), not offered")
        case .error(_, let e):
            throw e
        default:
            throw ReckerError(.badHandshake, "reckerd did not answer HELLO with WELCOME")
        }
    }

    /// Sends one message.
    package func send(_ message: Message) throws(ReckerError) {
        if let handshakeError { throw handshakeError }
        try socket.write(message.encoded)
    }

    /// Sends several messages in one write.
    package func send(_ messages: [Message]) throws(ReckerError) {
        if let handshakeError { throw handshakeError }
        var bytes: [UInt8] = []
        for m in messages { bytes.append(contentsOf: try m.encoded) }
        try socket.write(bytes)
    }

    /// Blocks until the next message arrives. `CONNECTION_LOST` when the daemon closes.
    package func receive() throws(ReckerError) -> Message {
        try completeHandshake()
        while true {
            if let f = try reader.next() { return try Message(frame: f) }
            readBuffer.removeAll(keepingCapacity: true)
            if try socket.read(into: &readBuffer) == 0 {
                throw ReckerError(.connectionLost, "reckerd closed the connection")
            }
            reader.append(readBuffer)
        }
    }

    package func close() { socket.close() }
}
