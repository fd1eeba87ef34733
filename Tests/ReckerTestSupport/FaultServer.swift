import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 server in Swift for what nginx cannot do: echo a digest of the request
/// body, answer late, or misbehave on purpose. TCP_NODELAY is on (without it a reused
/// connection waits ~40 ms on delayed ACKs).
///
/// Endpoints:
/// - `/digest` — answers `<bytes> <fnv1a64 hex>` of the request body, plus the method.
/// - `/delay/MS` — answers "ok" after MS milliseconds.
/// - `/headers` — answers the request headers, one per line.
/// - `/set-cookie` — answers with `Set-Cookie: session=secret`.
/// - `/cookies/...` — answers the Cookie header received; `/cookies/set...` also sets seven
///   cookies (host-only, HttpOnly, Max-Age, a path, Secure with Expires, a Domain, one
///   expired), `/cookies/del` expires `a`, `/cookies/redirect/LOCATION` sets `r` and redirects.
/// - `/hang` — reads the request and never answers.
/// - `/many-headers/N` — answers with N extra (empty) headers.
/// - `/late-extra` — answers "ok", then 20 ms later writes `EVIL!` on the connection
///   (an upstream that sends more than it said, after the response).
/// - `/redirect/LOCATION` — answers 302 with `Location: LOCATION` (the rest of the path).
/// - `/moved/CODE/LOCATION` — answers CODE (301, 302, 303, 307, 308) with `Location: LOCATION`.
/// - `/huge-header/N` — answers with one header line whose value is N bytes.
/// - `/http09` — answers `hello` with no status line or headers (HTTP/0.9), then closes.
/// - `/continue-flood/N` — answers N `100 Continue` heads, then closes without a final one.
/// - `/close-on-reuse...` — answers as `/digest` as a connection's first request; as a later request on
///   the same connection it reads the request whole and closes without a byte of answer
///   (what an upstream whose keep-alive timer fired as the request arrived looks like).
public final class FaultServer: @unchecked Sendable {
    public let port: UInt16
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let counts = NSLock()
    private var _connections = 0
    private var _open = 0
    private var _maxOpen = 0
    private var _closed = 0
    private var _requests = 0
    private var _byRequest: [String: Int] = [:]

    public init() throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let box = Box()
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                box.server?.noteConnection()
                return channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(server: box.server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = UInt16(channel.localAddress!.port!)
        box.server = self
    }

    deinit {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    public func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// TCP connections accepted so far.
    public var connections: Int { counts.lock(); defer { counts.unlock() }; return _connections }
    /// Requests answered so far.
    public var requests: Int { counts.lock(); defer { counts.unlock() }; return _requests }

    /// Connections open now, the most open at once so far, and those closed so far.
    public var openConnections: Int { counts.lock(); defer { counts.unlock() }; return _open }
    public var maxOpenConnections: Int { counts.lock(); defer { counts.unlock() }; return _maxOpen }
    public var closedConnections: Int { counts.lock(); defer { counts.unlock() }; return _closed }

    func noteConnection() {
        counts.lock()
        _connections += 1
        _open += 1
        _maxOpen = max(_maxOpen, _open)
        counts.unlock()
    }

    func noteClose() { counts.lock(); _open -= 1; _closed += 1; counts.unlock() }
    func noteRequest(_ method: String, _ uri: String) {
        counts.lock()
        _requests += 1
        _byRequest["\(method) \(uri)", default: 0] += 1
        counts.unlock()
    }

    /// How many times the server received `METHOD uri` (read whole, answered or not).
    public func received(_ method: String, _ uri: String) -> Int {
        counts.lock(); defer { counts.unlock() }
        return _byRequest["\(method) \(uri)"] ?? 0
    }

    public static func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return h
    }

    private final class Box: @unchecked Sendable { weak var server: FaultServer? }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        weak var server: FaultServer?
        var head: HTTPRequestHead?
        var hash: UInt64 = 0xcbf29ce484222325
        var length = 0
        /// Requests read on this connection before the current one.
        var served = 0

        init(server: FaultServer?) { self.server = server }

        func channelInactive(context: ChannelHandlerContext) {
            server?.noteClose()
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                hash = 0xcbf29ce484222325
                length = 0
            case .body(var buf):
                length += buf.readableBytes
                while let b = buf.readInteger(as: UInt8.self) { hash = (hash ^ UInt64(b)) &* 0x100000001b3 }
            case .end:
                guard let head else { return }
                server?.noteRequest(head.method.rawValue, head.uri)
                let path = head.uri
                defer { served += 1 }
                if path == "/hang" {
                    return
                } else if path == "/http09" || path.hasPrefix("/continue-flood/") {
                    let n = path == "/http09" ? 0 : min(Int(path.dropFirst(16)) ?? 0, 1_000_000)
                    let raw = path == "/http09" ? "hello\n" : String(repeating: "HTTP/1.1 100 Continue\r\n\r\n", count: n)
                    let channel = context.channel
                    // Below the HTTP encoder, straight to the socket.
                    channel.pipeline.context(handlerType: HTTPResponseEncoder.self).whenSuccess { encoder in
                        encoder.writeAndFlush(NIOAny(ByteBuffer(string: raw))).whenComplete { _ in channel.close(promise: nil) }
                    }
                } else if path == "/late-extra" {
                    respond(context, head: head, body: "ok")
                    let channel = context.channel
                    context.eventLoop.scheduleTask(in: .milliseconds(20)) {
                        // Below the HTTP encoder, straight to the socket.
                        channel.pipeline.context(handlerType: HTTPResponseEncoder.self).whenSuccess { encoder in
                            encoder.writeAndFlush(NIOAny(ByteBuffer(string: "EVIL!")), promise: nil)
                        }
                    }
                } else if path.hasPrefix("/moved/"), let code = Int(path.dropFirst(7).prefix(3)) {
                    respond(context, head: head, body: "moved", status: .init(statusCode: code),
                            extra: [("Location", String(path.dropFirst(11)))])
                } else if path.hasPrefix("/redirect/") {
                    respond(context, head: head, body: "moved", status: .found, extra: [("Location", String(path.dropFirst(10)))])
                } else if path.hasPrefix("/many-headers/"), let n = Int(path.dropFirst(14)) {
                    respond(context, head: head, body: "many", extra: (0 ..< n).map { ("X-\($0)", "") })
                } else if path.hasPrefix("/huge-header/"), let n = Int(path.dropFirst(13)) {
                    respond(context, head: head, body: "huge", extra: [("X-Huge", String(repeating: "h", count: n))])
                } else if path.hasPrefix("/close-on-reuse") {
                    if served > 0 {
                        context.close(promise: nil)
                    } else {
                        respond(context, head: head, body: "\(head.method.rawValue) \(length) \(String(hash, radix: 16))")
                    }
                } else if path.hasPrefix("/delay/"), let ms = Int(path.dropFirst(7)) {
                    let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                    context.eventLoop.scheduleTask(in: .milliseconds(Int64(ms))) {
                        let (h, ctx) = loopBound.value
                        h.respond(ctx, head: head, body: "ok")
                    }
                } else if path.hasPrefix("/chunks/"), let n = Int(path.dropFirst(8)), n >= 0, n <= 10_000_000 {
                    // n chunks of one byte each ("x"), chunked transfer encoding.
                    var headers = HTTPHeaders([("Content-Type", "text/plain")])
                    headers.add(name: "Transfer-Encoding", value: "chunked")
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
                    let one = ByteBuffer(string: "x")
                    for _ in 0 ..< n { context.write(wrapOutboundOut(.body(.byteBuffer(one))), promise: nil) }
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                } else if path == "/digest" {
                    respond(context, head: head, body: "\(head.method.rawValue) \(length) \(String(hash, radix: 16))")
                } else if path.hasPrefix("/cookies/") {
                    var extra: [(String, String)] = []
                    if path.hasPrefix("/cookies/set") {
                        extra = [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2; Path=/; HttpOnly"), ("Set-Cookie", "c=3; Max-Age=86400"),
                                 ("Set-Cookie", "d=4; Path=/cookies/sub"), ("Set-Cookie", "e=5; Expires=Wed, 09 Jun 2038 10:18:14 GMT; Secure"),
                                 ("Set-Cookie", "f=6; Domain=localhost"), ("Set-Cookie", "zz=old; Expires=Wed, 09 Jun 2001 10:18:14 GMT")]
                    } else if path.hasPrefix("/cookies/del") {
                        extra = [("Set-Cookie", "a=; Max-Age=0")]
                    } else if path.hasPrefix("/cookies/redirect/") {
                        extra = [("Set-Cookie", "r=9"), ("Location", String(path.dropFirst(18)))]
                    }
                    let cookie = head.headers["Cookie"].joined(separator: " | ")
                    respond(context, head: head, body: "cookie: \(cookie.isEmpty ? "None" : cookie)\n",
                            status: path.hasPrefix("/cookies/redirect/") ? .found : .ok, extra: extra)
                } else if path == "/set-cookie" {
                    respond(context, head: head, body: "cookie set", extra: [("Set-Cookie", "session=secret; Path=/")])
                } else if path == "/headers" {
                    respond(context, head: head, body: head.headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n"))
                } else {
                    respond(context, head: head, body: "not found", status: .notFound)
                }
            }
        }

        func respond(_ context: ChannelHandlerContext, head: HTTPRequestHead, body: String, status: HTTPResponseStatus = .ok,
                     extra: [(String, String)] = []) {
            var headers = HTTPHeaders(extra)
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            headers.add(name: "Content-Type", value: "text/plain")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
