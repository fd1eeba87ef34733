import ReckerProtocol

#if canImport(Glibc)
import Glibc
#endif

/// `recker batch`: many requests over one daemon connection, at most N in flight, one JSON
/// line out per result as it completes, then a summary line.
struct Batch {
    struct Item {
        var head: RequestHead
        var body: [UInt8]?
    }

    /// A request in flight.
    struct Running {
        var index: Int
        var url: String
        var head: ResponseHead?
        var body: [UInt8] = []
        var file: Output?
        var upload: [UInt8] = []
        var uploaded = 0
        var sendWindow: Int
        var unacked = 0
    }

    /// Reads the input: one URL or JSON request per line; blank lines and # comments skipped.
    /// `extra` (the command line's -H) goes with every item, after the item's own headers,
    /// except where the item names the same header.
    static func read(_ text: String, options: RequestOptions, headers extra: [(name: String, value: String)] = []) throws(UsageError) -> [Item] {
        func withExtra(_ own: [(name: String, value: String)]) -> [(name: String, value: String)] {
            let named = Set(own.map { $0.name.lowercased() })
            return own + extra.filter { !named.contains($0.name.lowercased()) }
        }
        var items: [Item] = []
        for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let line = raw.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard line.hasPrefix("{") else {
                items.append(Item(head: RequestHead(url: URLText.withScheme(line), headers: withExtra([]), options: options)))
                continue
            }
            let v: MiniJSON.Value
            do { v = try MiniJSON.parse(line) } catch { throw UsageError("line \(n + 1): \(error.message)") }
            guard let url = v["url"]?.string else { throw UsageError("line \(n + 1): no \"url\"") }
            var headers: [(name: String, value: String)] = []
            switch v["headers"] {
            case .object(let pairs)?:
                for (k, hv) in pairs { headers.append((name: k, value: hv.string ?? "")) }
            case .array(let list)?:
                for e in list {
                    guard case .array(let pair) = e, pair.count == 2, let k = pair[0].string, let hv = pair[1].string else {
                        throw UsageError("line \(n + 1): headers must be {name: value} or [[name, value], …]")
                    }
                    headers.append((name: k, value: hv))
                }
            case nil, .null?: break
            default: throw UsageError("line \(n + 1): headers must be {name: value} or [[name, value], …]")
            }
            var body = v["body"]?.string.map { Array($0.utf8) }
            if let b64 = v["body_base64"]?.string {
                guard let bytes = Base64.decode(b64) else { throw UsageError("line \(n + 1): \"body_base64\" is not base64") }
                body = bytes
            }
            let method = v["method"]?.string ?? (body == nil ? "GET" : "POST")
            items.append(Item(head: RequestHead(method: method, url: URLText.withScheme(url), headers: withExtra(headers),
                                                bodyLength: body.map { UInt64($0.count) }, options: options), body: body))
        }
        return items
    }

    let items: [Item]
    let concurrency: Int
    let outputDir: String?
    /// -f: a status of 400 or more fails the item.
    let fail: Bool
    /// Show a progress line on stderr (a terminal).
    let progress: Bool
    let connection: any MessageChannel

    /// Runs the batch; returns how many items failed.
    func run() throws(ReckerError) -> Int {
        let start = ContinuousClock.now
        let window = Int(connection.welcome.initialWindow)
        let maxData = Int(connection.welcome.maxFrame) - Frame.headerSize
        let limit = min(concurrency, Int(connection.welcome.maxInFlight))
        var running: [UInt32: Running] = [:]
        var next = 0, done = 0, failed = 0
        var nextStream: UInt32 = 1

        func emit(_ line: String) {
            if progress { Output.stderr.write("\r\u{1B}[K") }
            Output.stdout.write(line + "\n")
            if progress && done < items.count {
                Output.stderr.write("recker batch: \(done)/\(items.count) done, \(failed) failed, \(running.count) in flight")
            }
        }
        func failure(_ r: Running, _ code: String, _ number: Int, _ message: String, status: UInt16? = nil) {
            failed += 1
            let s = status.map { ",\"status\":\($0)" } ?? ""
            emit("{\"index\":\(r.index),\"url\":\(MiniJSON.quote(r.url))\(s),\"error\":\"\(code)\",\"code\":\(number),\"message\":\(MiniJSON.quote(message))}")
        }

        while done < items.count {
            var out: [Message] = []
            while running.count < limit && next < items.count {
                let item = items[next]
                let id = nextStream
                nextStream &+= 1
                var r = Running(index: next, url: item.head.url, sendWindow: window)
                if let dir = outputDir {
                    let fd = open("\(dir)/\(next)", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                    guard fd >= 0 else {
                        let reason = String(cString: strerror(errno))
                        next += 1
                        done += 1
                        failure(r, "WRITE_ERROR", Int(ExitCode.writeError), "cannot write \(dir)/\(r.index): \(reason)")
                        continue
                    }
                    r.file = Output(fd: fd)
                }
                r.upload = item.body ?? []
                out.append(.requestHead(stream: id, item.head, endRequest: item.body == nil))
                running[id] = r
                next += 1
            }
            for (id, var r) in running where r.uploaded < r.upload.count && r.sendWindow > 0 {
                let n = min(r.sendWindow, maxData, r.upload.count - r.uploaded)
                out.append(.requestBody(stream: id, Array(r.upload[r.uploaded ..< r.uploaded + n]),
                                        endRequest: r.uploaded + n == r.upload.count))
                r.uploaded += n
                r.sendWindow -= n
                running[id] = r
            }
            let message: Message
            do {
                if !out.isEmpty { try connection.send(out) }
                message = try connection.receive()
            } catch {
                // The daemon went away: every item still gets its line, those in flight
                // saying they may have reached the upstream, the rest that they were not sent.
                for (_, r) in running.sorted(by: { $0.value.index < $1.value.index }) {
                    if let f = r.file { close(f.fd) }
                    failure(r, error.code.name, Int(error.code.rawValue),
                            "\(error.message), with the request in flight: it may have reached the upstream")
                }
                for index in next ..< items.count {
                    failure(Running(index: index, url: items[index].head.url, sendWindow: 0), error.code.name, Int(error.code.rawValue),
                            "\(error.message); the request was not sent")
                }
                running = [:]
                done = items.count
                break
            }
            let id = message.stream
            guard var r = running[id] else { continue }
            switch message {
            case .windowUpdate(_, let inc):
                r.sendWindow += Int(inc)
                running[id] = r
            case .responseHead(_, let h):
                r.head = h
                running[id] = r
            case .responseBody(_, let data):
                if let f = r.file { f.write(data) } else { r.body += data }
                r.unacked += data.count
                if r.unacked >= window / 2 {
                    try connection.send(.windowUpdate(stream: id, increment: UInt32(r.unacked)))
                    r.unacked = 0
                }
                running[id] = r
            case .responseEnd(_, let end):
                running[id] = nil
                done += 1
                if let f = r.file { close(f.fd) }
                let h = r.head!
                if fail && h.status >= 400 {
                    failure(r, "HTTP_ERROR", Int(ExitCode.httpError), "The requested URL returned error: \(h.status)", status: h.status)
                    continue
                }
                var line = "{\"index\":\(r.index),\"url\":\(MiniJSON.quote(r.url)),\"status\":\(h.status)"
                line += ",\"reused\":\(h.reused),\"connection_id\":\(h.connectionID)"
                line += ",\"http_version\":\"\(h.versionName)\""
                line += ",\"time_ms\":\(Batch.millis(end.totalMicros)),\"size\":\(end.bodyBytes)"
                if r.file != nil {
                    line += ",\"body_file\":\(MiniJSON.quote("\(outputDir!)/\(r.index)"))}"
                } else if let text = String(validating: r.body, as: UTF8.self) {
                    line += ",\"body\":\(MiniJSON.quote(text))}"
                } else {
                    // Bytes that are not UTF-8 would not survive a JSON string.
                    line += ",\"body_base64\":\"\(Base64.encode(r.body))\"}"
                }
                emit(line)
            case .error(_, let e):
                running[id] = nil
                done += 1
                if let f = r.file { close(f.fd) }
                failure(r, e.code.name, Int(e.code.rawValue), e.message)
            default:
                continue
            }
        }
        if progress { Output.stderr.write("\r\u{1B}[K") }
        let ms = Batch.millis(UInt32(clamping: (ContinuousClock.now - start).nanoseconds / 1000))
        emit("{\"summary\":{\"total\":\(items.count),\"successful\":\(items.count - failed),\"failed\":\(failed),\"duration_ms\":\(ms)}}")
        return failed
    }

    /// Microseconds as milliseconds with three decimals.
    static func millis(_ us: UInt32) -> String {
        let frac = String(us % 1000)
        return "\(us / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
    }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}
