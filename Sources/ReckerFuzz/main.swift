import ReckerProtocol
import ReckerSession

#if canImport(Glibc)
import Glibc
#endif

/// The fuzz target: any bytes, as a client could send them, through the daemon's frame
/// path (the frame reader into the session's machine), the message codec and the door's
/// checks, and the HTTP front's request reader. Nothing may trap; every message that decodes
/// encodes back to bytes that decode to the same message; the HTTP reader reads the same
/// whole and in pieces.
///
/// Built with `-sanitize=fuzzer,address -DFUZZING` (scripts/fuzz.sh), libFuzzer drives it
/// (LLVMFuzzerRunDriver: SwiftPM owns an executable's `main`).
/// Built plainly, it replays the inputs named on its command line (files or folders): the
/// regression run of Tests/FuzzCorpus in `make test`.
/// The HTTP front's request reader over `bytes` handed in pieces of `step`: what it read,
/// event by event. Every call takes bytes or yields an event, so the count bounds it.
func httpEvents(_ bytes: [UInt8], step: Int) -> [String] {
    var reader = HTTPRequestReader(headLimit: 8192)
    var out: [String] = []
    var body: [UInt8] = []
    var start = 0
    var available = min(step, bytes.count)
    for _ in 0 ..< 4 * bytes.count + 16 {
        let (taken, event) = reader.read(bytes[start ..< available])
        start += taken
        guard let event else {
            if available == bytes.count && !reader.hasEventWithoutInput { break }
            available = min(bytes.count, available + step)
            continue
        }
        switch event {
        case .begun: continue
        case .head(let r): out.append("head \(r.method) \(r.target) \(r.major).\(r.minor) \(r.headers.count) \(r.keepAlive) \(r.chunked) \(r.contentLength ?? 0)")
        case .body(let piece): body += piece
        case .end:
            out.append("body \(body.count) \(body.reduce(0) { $0 &* 31 &+ Int($1) })")
            body = []
            out.append("end")
        case .refused(let r):
            out.append("refused \(r.status)")
            return out
        }
    }
    return out
}

/// The daemon's own frame path: the bytes as a client's, read as the daemon reads them
/// (`FrameReader` at the session's frame limit, then announced) into its session machine,
/// with an engine that answers every request started at once. An even first byte puts a
/// valid HELLO in front, so the fuzzer reaches past the handshake. Nothing may trap;
/// nothing may follow a connection error; no more requests in flight than announced.
func session(_ bytes: [UInt8]) {
    var config = SessionConfig()
    config.maxFrame = 4096
    config.maxInFlightPerClient = 8
    config.streamWindow = 1024
    config.responseBuffer = 2048
    var m = SessionStateMachine(client: 1, peer: PeerCredentials(pid: 1, uid: 1000, gids: [1000]), now: 0)
    var reader = FrameReader(maxLength: config.maxFrame)
    if (bytes.first ?? 1) & 1 == 0, let hello = try? Message.hello(.init()).encoded { reader.append(hello) }
    reader.append(bytes)
    var now: UInt64 = 0
    var transfer: TransferID = 1
    var closing = false

    func carryOut(_ actions: [SessionStateMachine.Action], _ m: inout SessionStateMachine) {
        var work = actions
        var steps = 0
        while !work.isEmpty && steps < 10_000 {
            steps += 1
            let action = work.removeFirst()
            switch action {
            case .write(let message):
                if case .failure(let error) = Result(catching: { () throws(ReckerError) in try message.encoded }) {
                    work += m.encodingFailed(stream: message.stream, error)
                }
            case .engine(.start(let id, _)):
                work += m.responseHead(id, ResponseHead(status: 200, httpVersion: 11, connectionID: 1, reused: false), debug: true)
                work += m.responseBody(id, [UInt8](repeating: 0x61, count: 3000), config: config)
                work += m.responseEnd(id, ResponseEnd(totalMicros: 1, bodyBytes: 3000), config: config)
            case .stats(let stream, _):
                work += m.statsReady(stream: stream, [UInt8](repeating: 0x7B, count: 5000), config: config)
            case .close:
                closing = true
            case .writeBody, .engine, .responded, .log:
                break
            }
        }
    }

    for _ in 0 ..< 1000 {
        reader.maxLength = m.announced?.maxFrame ?? config.maxFrame
        let frame: Frame
        do throws(ReckerError) {
            guard let next = try reader.next() else { break }
            frame = next
        } catch {
            carryOut(m.close(error), &m)
            break
        }
        now += 1_000_000
        let actions = m.receive(frame, transfer: transfer, config: config, draining: false, now: now)
        transfer += 1
        if closing && !actions.isEmpty { fatalError("actions after a connection error: \(actions)") }
        carryOut(actions, &m)
        if m.inFlight > config.maxInFlightPerClient { fatalError("\(m.inFlight) requests in flight, \(config.maxInFlightPerClient) announced") }
        if closing { break }
    }
    m.inputBuffered(partialFrame: reader.buffered > 0, now: now)
    if let deadline = m.deadline() { carryOut(m.timedOut(now: deadline), &m) }
    _ = m.closed()
    if m.inFlight != 0 { fatalError("requests left after close") }
}

func check(_ bytes: [UInt8]) {
    session(bytes)

    // The HTTP front's reader: nothing traps, and how the bytes are cut changes nothing.
    let whole = httpEvents(bytes, step: max(1, bytes.count))
    let pieces = httpEvents(bytes, step: 1 + Int(bytes.first ?? 0) % 7)
    if whole != pieces { fatalError("the HTTP reader read \(whole) whole but \(pieces) in pieces") }

    var reader = FrameReader(maxLength: 1 << 16)
    reader.append(bytes)
    for _ in 0 ..< 1000 {
        guard let frame = try? reader.next() else { break }
        guard let message = try? Message(frame: frame) else { continue }
        if case .requestHead(_, let head, let end) = message {
            _ = try? RequestValidator.validate(head, endRequest: end)
            _ = RequestValidator.mayResend(head)
        }
        guard let encoded = try? message.encoded else { continue }
        var again = FrameReader(maxLength: 1 << 20)
        again.append(encoded)
        guard let f = try? again.next(), let back = try? Message(frame: f), back == message else {
            fatalError("\(message) does not survive encode and decode")
        }
    }
}

#if FUZZING
/// libFuzzer's entry point (its runtime refers to it), and the callback handed to its driver.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    check(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzer(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
               _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@main
enum Fuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzer(&argc, &argv, fuzzOne))
    }
}
#else
@main
enum Replay {
    static func main() {
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            for file in files(at: path) {
                check(read(file))
                count += 1
            }
        }
        print("replayed \(count) inputs")
    }

    static func files(at path: String) -> [String] {
        guard let dir = opendir(path) else { return [path] }
        defer { closedir(dir) }
        var out: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if !name.hasPrefix(".") { out.append(path + "/" + name) }
        }
        return out.sorted()
    }

    static func read(_ path: String) -> [UInt8] {
        guard let f = fopen(path, "rb") else { return [] }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            out += buffer[0 ..< n]
        }
        return out
    }
}
#endif
