import ReckerProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// recker-load: a load generator that speaks reckerd's protocol. N client connections, each
/// with one request in flight at a time, for a fixed time; prints one JSON line with the
/// request count, rate, errors and latency percentiles (µs).
///
/// usage: recker-load --socket PATH --url URL [--connections N] [--seconds S]

nonisolated func now() -> UInt64 { MonotonicClock.nanoseconds() }

var socketPath = SocketPaths.clientPath()
var url = ""
var connections = 1
var seconds = 5.0
var args = Array(CommandLine.arguments.dropFirst())
while !args.isEmpty {
    let a = args.removeFirst()
    guard let v = args.first else { break }
    args.removeFirst()
    switch a {
    case "--socket": socketPath = v
    case "--url": url = v
    case "--connections": connections = Int(v) ?? 1
    case "--seconds": seconds = Double(v) ?? 5
    default: break
    }
}

/// One client connection's loop; its fields are touched by its own thread only until joined.
final class Worker: @unchecked Sendable {
    var latencies: [UInt32] = []
    var errors = 0
    let deadline: UInt64
    let socketPath: String
    let url: String
    init(deadline: UInt64, socketPath: String, url: String) {
        self.deadline = deadline
        self.socketPath = socketPath
        self.url = url
    }

    func run() {
        guard let c = try? ReckerConnection(socketPath: socketPath) else { errors += 1; return }
        latencies.reserveCapacity(100_000)
        var stream: UInt32 = 1
        let head = RequestHead(url: url)
        while now() < deadline {
            let start = now()
            do {
                try c.send(.requestHead(stream: stream, head, endRequest: true))
                var unacked = 0
                loop: while true {
                    switch try c.receive() {
                    case .responseBody(_, let data): unacked += data.count
                    case .responseEnd: break loop
                    case .error: errors += 1; break loop
                    default: continue
                    }
                }
                if unacked > 0 { try c.send(.windowUpdate(stream: stream, increment: UInt32(unacked))) }
            } catch {
                errors += 1
                return
            }
            latencies.append(UInt32(clamping: (now() - start) / 1000))
            stream = stream == UInt32.max ? 1 : stream + 1
        }
    }

    /// Runs `run()` on a thread of its own.
    nonisolated func start() -> pthread_t {
        var t = pthread_t()
        pthread_create(&t, nil, { raw in
            Unmanaged<Worker>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, Unmanaged.passRetained(self).toOpaque())
        return t
    }
}

let deadline = now() + UInt64(seconds * 1e9)
let workers = (0 ..< connections).map { _ in Worker(deadline: deadline, socketPath: socketPath, url: url) }
let threads = workers.map { $0.start() }
for t in threads { pthread_join(t, nil) }
let all = workers.flatMap(\.latencies).sorted()
let pct = { (p: Double) -> UInt32 in all.isEmpty ? 0 : all[min(all.count - 1, Int(Double(all.count) * p / 100))] }
let errors = workers.map(\.errors).reduce(0, +)
print("{\"requests\":\(all.count),\"rps\":\(Double(all.count) / seconds),\"errors\":\(errors),\"p50_us\":\(pct(50)),\"p90_us\":\(pct(90)),\"p99_us\":\(pct(99))}")
