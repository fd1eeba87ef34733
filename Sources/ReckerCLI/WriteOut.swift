import ReckerProtocol

/// `-w`: curl's write-out variables, from what reckerd reports for each response, plus
/// reckerd's own (reused, connection_id, time_queue, pooled, may_have_reached_upstream).
///
/// remote_ip, remote_port, local_ip, local_port and time_namelookup come from the response
/// head's facts block (docs/PROTOCOL.md §2.5); a daemon that sends none gets curl's unknown
/// value ("" or 0).
struct WriteOut {
    let report: TransferReport
    let filename: String?
    let pooled: Bool
    let referer: String?

    /// A variable's value: text, a number, or nothing (curl's null).
    enum Value {
        case text(String?)
        case number(String)
    }

    /// Every variable %{json} lists, in its order.
    static let names = [
        "certs", "connection_id", "content_type", "errormsg", "exitcode", "filename_effective", "ftp_entry_path",
        "http_code", "http_connect", "http_version", "local_ip", "local_port", "may_have_reached_upstream", "method",
        "num_certs", "num_connects", "num_headers", "num_redirects", "pooled", "proxy_ssl_verify_result",
        "redirect_url", "referer", "remote_ip", "remote_port", "response_code", "reused", "scheme", "size_download",
        "size_header", "size_request", "size_upload", "speed_download", "speed_upload", "ssl_verify_result",
        "time_appconnect", "time_connect", "time_namelookup", "time_pretransfer", "time_queue", "time_redirect",
        "time_starttransfer", "time_total", "url", "url_effective", "urlnum",
    ]

    /// Microseconds as curl writes seconds: "0.000123".
    static func seconds(_ us: UInt64) -> String {
        let frac = String(us % 1_000_000)
        return "\(us / 1_000_000)." + String(repeating: "0", count: 6 - frac.count) + frac
    }

    func value(_ name: String) -> Value? {
        let r = report
        let h = r.response
        let last = r.heads.last
        switch name {
        case "certs": return .text("")
        case "num_certs": return .number("0")
        case "content_type": return .text(h?.header("content-type"))
        case "errormsg": return .text(r.errorMessage)
        case "exitcode": return .number(String(r.exitCode))
        case "filename_effective": return .text(filename)
        case "ftp_entry_path": return .text(nil)
        case "http_code", "response_code": return .number(String(h?.status ?? 0))
        case "http_connect", "proxy_ssl_verify_result", "ssl_verify_result", "urlnum", "speed_upload": return .number("0")
        // curl 7.88 writes HTTP/1.0 as "1".
        case "http_version": return .text(h.map { $0.httpVersion == 10 ? "1" : $0.versionName } ?? "0")
        case "local_ip": return .text(last?.facts?.localIP ?? "")
        case "remote_ip": return .text(last?.facts?.remoteIP ?? "")
        case "local_port": return .number(String(last?.facts?.localPort ?? 0))
        case "remote_port": return .number(String(last?.facts?.remotePort ?? 0))
        case "method": return .text(r.method)
        case "num_connects": return .number(String(r.heads.filter { !$0.reused }.count))
        case "num_headers": return .number(String(h?.headers.count ?? 0))
        case "num_redirects": return .number(String(r.redirects))
        case "redirect_url": return .text(r.redirectURL)
        case "referer": return .text(referer)
        case "scheme": return .text(URLText.parse(r.urlEffective)?.scheme.uppercased())
        case "size_download": return .number(String(r.delivered))
        case "size_header": return .number(String(r.headerBytes))
        case "size_request": return .number(String(r.requestBytes + r.uploadBytes))
        case "size_upload": return .number(String(r.error == nil ? r.uploadBytes : 0))
        case "speed_download":
            return .number(r.totalMicros == 0 ? "0" : String(r.delivered * 1_000_000 / r.totalMicros))
        case "time_appconnect": return .number(WriteOut.seconds(last.map { $0.tlsMicros == 0 ? 0 : UInt64($0.connectMicros) + UInt64($0.tlsMicros) } ?? 0))
        case "time_connect": return .number(WriteOut.seconds(UInt64(last?.connectMicros ?? 0)))
        case "time_namelookup": return .number(WriteOut.seconds(UInt64(last?.facts?.namelookupMicros ?? 0)))
        case "time_pretransfer": return .number(WriteOut.seconds(last.map { UInt64($0.connectMicros) + UInt64($0.tlsMicros) } ?? 0))
        case "time_queue": return .number(WriteOut.seconds(UInt64(last?.queueMicros ?? 0)))
        case "time_redirect": return .number(WriteOut.seconds(r.redirectMicros))
        case "time_starttransfer": return .number(WriteOut.seconds(UInt64(last?.firstByteMicros ?? 0)))
        case "time_total": return .number(WriteOut.seconds(r.totalMicros))
        case "url": return .text(r.url)
        case "url_effective": return .text(r.urlEffective)
        case "reused": return .number(last?.reused == true ? "1" : "0")
        case "connection_id": return .number(String(last?.connectionID ?? 0))
        case "pooled": return .number(pooled ? "1" : "0")
        case "may_have_reached_upstream":
            return .number(r.error.map { $0.mayHaveReachedUpstream } ?? !r.heads.isEmpty ? "1" : "0")
        default: return nil
        }
    }

    /// Expands `format` and writes it, switching between stdout and stderr at %{stderr}
    /// and %{stdout}; an unknown variable is warned about on stderr and prints nothing.
    func write(_ format: String) {
        var target = Output.stdout
        var text = ""
        let chars = Array(format)
        var i = 0
        func flush() {
            target.write(text)
            text = ""
        }
        // The next "}" at or after each position, found in one pass: looking for it at every
        // "%{" made a long format with no "}" quadratic (100 KB of "%{" spun for minutes).
        var nextClose = [Int](repeating: chars.count, count: chars.count + 1)
        for k in stride(from: chars.count - 1, through: 0, by: -1) { nextClose[k] = chars[k] == "}" ? k : nextClose[k + 1] }
        /// The name inside braces starting at `from`, and the index after "}"; nil if unclosed.
        func braced(_ from: Int) -> (String, Int)? {
            guard from <= chars.count, nextClose[from] < chars.count else { return nil }
            let close = nextClose[from]
            return (String(chars[from ..< close]), close + 1)
        }
        while i < chars.count {
            let c = chars[i]
            if c == "\\" && i + 1 < chars.count {
                switch chars[i + 1] {
                case "n": text += "\n"
                case "t": text += "\t"
                case "r": text += "\r"
                case "\\": text += "\\"
                default: text += "\\" + String(chars[i + 1])
                }
                i += 2
                continue
            }
            guard c == "%", i + 1 < chars.count else { text.append(c); i += 1; continue }
            if chars[i + 1] == "%" { text += "%"; i += 2; continue }
            if chars[i + 1] == "{", let (name, next) = braced(i + 2) {
                i = next
                switch name {
                case "stdout": flush(); target = Output.stdout
                case "stderr": flush(); target = Output.stderr
                case "json": text += json()
                case "header_json": text += headerJSON()
                default:
                    switch value(name) {
                    case .text(let s)?: text += s ?? ""
                    case .number(let n)? where name == "http_code" || name == "response_code" || name == "http_connect":
                        text += String(repeating: "0", count: max(0, 3 - n.count)) + n
                    case .number(let n)?: text += n
                    case nil:
                        flush()
                        Output.stderr.write("recker: unknown --write-out variable: '\(name)'\n")
                    }
                }
                continue
            }
            if chars[(i + 1)...].starts(with: Array("header{")), let (name, next) = braced(i + 8) {
                i = next
                let lower = name.lowercased()
                text += (report.response?.headers ?? []).filter { $0.name.lowercased() == lower }.map(\.value).joined(separator: ", ")
                continue
            }
            text.append(c)
            i += 1
        }
        flush()
    }

    /// Every variable as one JSON object, as curl's %{json}.
    func json() -> String {
        var parts: [String] = []
        for name in WriteOut.names {
            switch value(name)! {
            case .text(let s): parts.append("\"\(name)\":" + (s.map(MiniJSON.quote) ?? "null"))
            case .number(let n): parts.append("\"\(name)\":\(n)")
            }
        }
        parts.append("\"recker_version\":\"\(Message.release)\"")
        return "{" + parts.joined(separator: ",") + "}"
    }

    /// The final response's headers as curl's %{header_json}: lower-case names, value lists.
    func headerJSON() -> String {
        var order: [String] = []
        var values: [String: [String]] = [:]
        for h in report.response?.headers ?? [] {
            let k = h.name.lowercased()
            if values[k] == nil { order.append(k) }
            values[k, default: []].append(h.value)
        }
        let lines = order.map { k in MiniJSON.quote(k) + ":[" + values[k]!.map(MiniJSON.quote).joined(separator: ",") + "]" }
        return "{" + lines.joined(separator: ",\n") + "\n}"
    }
}
