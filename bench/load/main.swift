import Glibc
import ReckerLoop
import ReckerProtocol

/// recker-load: a load generator that speaks reckerd's protocol, built like wrk: one thread,
/// one epoll loop, N client connections, each with one request in flight at a time, for a
/// fixed time. It prints one JSON line with the request count, rate, errors and latency
/// percentiles (µs). Its own cost per request is a few system calls, so the figures are
/// the daemon's, not the generator's.
///
/// usage: recker-load --socket PATH --url URL [--connections N] [--seconds S]

let usage = "usage: recker-load --socket PATH --url URL [--connections N] [--seconds S]\n"

/// Writes `text` to stderr and exits 2: a mistyped flag must not load the default socket.
func usageError(_ text: String) -> Never {
    let line = Array(("recker-load: " + text + "\n" + usage).utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(2)
}

var socketPath = SocketPaths.clientPath()
var url = ""
var connections = 1
var seconds = 5.0
var args = Array(CommandLine.arguments.dropFirst())
while !args.isEmpty {
    let a = args.removeFirst()
    if a == "--help" || a == "-h" {
        print(usage, terminator: "")
        exit(0)
    }
    guard ["--socket", "--url", "--connections", "--seconds"].contains(a) else { usageError("unknown option \(a)") }
    guard let v = args.first else { usageError("\(a) needs a value") }
    args.removeFirst()
    switch a {
    case "--socket": socketPath = v
    case "--url": url = v
    case "--connections":
        guard let n = Int(v), n >= 1 else { usageError("--connections needs a whole number of at least 1, not \(v)") }
        connections = n
    default:
        guard let s = Double(v), s >= 0.1, s <= 86400 else { usageError("--seconds needs a number from 0.1 to 86400, not \(v)") }
        seconds = s
    }
}
if url.isEmpty { usageError("--url is required") }

/// What every connection sends: HELLO once, then the same request head on a new stream.
let hello = try! Message.hello(.init()).encoded
let request = try! Message.requestHead(stream: 1, RequestHead(url: url), endRequest: true).encoded

/// One client connection of the generator; loop-confined.
final class Client {
    /// Owns the descriptor (closing it when the client goes).
    let socket: UnixSocket
    var fd: Int32 { socket.fd }
    var reader = FrameReader()
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    var stream: UInt32 = 1
    var started: UInt64 = 0
    var welcomed = false
    var latencies: [UInt32] = []
    var errors = 0
    var open = true
    var registration: EventLoop.Registration?
    /// Called once when the client stops (its time is up, or it failed).
    var stopped: () -> Void = {}

    init(socket: UnixSocket) { self.socket = socket }

    func stop() {
        guard open else { return }
        open = false
        stopped()
    }

    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                // A request frame is ~60 bytes and nothing else is unread: a full socket
                // buffer means the daemon stopped reading; count it and stop this client.
                return false
            }
            offset += n
        }
        return true
    }

    func sendRequest() {
        var frame = request
        frame[6] = UInt8(truncatingIfNeeded: stream >> 24)
        frame[7] = UInt8(truncatingIfNeeded: stream >> 16)
        frame[8] = UInt8(truncatingIfNeeded: stream >> 8)
        frame[9] = UInt8(truncatingIfNeeded: stream)
        started = MonotonicClock.nanoseconds()
        if !send(frame) { fail() }
    }

    func fail() {
        errors += 1
        stop()
    }

    /// Reads what arrived and sends the next request when the last one ended.
    func readable(deadline: UInt64) {
        guard open else { return }
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
        guard n > 0 else { return fail() }
        reader.append(Array(buffer[0 ..< n]))
        while open, let frame = try? reader.next() {
            switch frame.type {
            case FrameType.welcome:
                welcomed = true
                sendRequest()
            case FrameType.responseEnd, FrameType.error:
                guard frame.stream == stream else { continue }
                if frame.type == FrameType.error { errors += 1 }
                let now = MonotonicClock.nanoseconds()
                latencies.append(UInt32(clamping: (now - started) / 1000))
                stream = stream == UInt32.max ? 1 : stream + 1
                if now < deadline { sendRequest() } else { stop() }
            default:
                continue
            }
        }
    }
}

let loop = try! EventLoop()
let deadline = MonotonicClock.nanoseconds() + UInt64(seconds * 1e9)
var clients: [Client] = []
var connectErrors = 0
for _ in 0 ..< connections {
    guard let socket = try? UnixSocket(connectingTo: socketPath) else {
        connectErrors += 1
        continue
    }
    let client = Client(socket: socket)
    _ = fcntl(client.fd, F_SETFL, fcntl(client.fd, F_GETFL) | O_NONBLOCK)
    guard client.send(hello) else {
        connectErrors += 1
        continue
    }
    clients.append(client)
    client.registration = try! loop.register(client.fd, .readable) { _ in client.readable(deadline: deadline) }
}
var running = clients.count
for client in clients {
    client.stopped = {
        if let r = client.registration { loop.unregister(r) }
        running -= 1
        if running == 0 { loop.stop() }
    }
}
// A request still unanswered 2 s after the end is counted as an error, not waited for.
loop.schedule(at: deadline + 2_000_000_000) { loop.stop() }
if running > 0 { loop.run() }
for client in clients where client.open { client.errors += 1 }
let all = clients.flatMap(\.latencies).sorted()
let pct = { (p: Double) -> UInt32 in all.isEmpty ? 0 : all[min(all.count - 1, Int(Double(all.count) * p / 100))] }
let errors = clients.map(\.errors).reduce(connectErrors, +)
print("{\"requests\":\(all.count),\"rps\":\(Double(all.count) / seconds),\"errors\":\(errors),\"p50_us\":\(pct(50)),\"p90_us\":\(pct(90)),\"p99_us\":\(pct(99))}")
