import ReckerProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Writes bytes to a file descriptor, whole, retrying EINTR.
struct Output {
    let fd: Int32

    /// Returns false when the write failed (a closed pipe, a full disk).
    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                off += n
            }
            return true
        }
    }

    @discardableResult
    func write(_ s: String) -> Bool { write(Array(s.utf8)) }

    static let stdout = Output(fd: 1)
    static let stderr = Output(fd: 2)
}

/// `-w` format expansion, with the facts reckerd reports for each response.
enum WriteOut {
    static func expand(_ format: String, head: ResponseHead?, end: ResponseEnd?, pooled: Bool = true) -> String {
        var out = ""
        var it = format.makeIterator()
        func secs(_ us: UInt32) -> String {
            let whole = us / 1_000_000
            let frac = String(us % 1_000_000)
            return "\(whole)." + String(repeating: "0", count: 6 - frac.count) + frac
        }
        while let c = it.next() {
            if c == "\\" {
                switch it.next() {
                case "n": out += "\n"
                case "t": out += "\t"
                case "r": out += "\r"
                case "\\": out += "\\"
                case let other?: out += "\\" + String(other)
                case nil: out += "\\"
                }
                continue
            }
            guard c == "%" else { out.append(c); continue }
            guard let open = it.next() else { out += "%"; break }
            guard open == "{" else { out += open == "%" ? "%" : "%" + String(open); continue }
            var name = ""
            while let n = it.next(), n != "}" { name.append(n) }
            let h = head
            switch name {
            case "http_code", "response_code": out += h.map { String($0.status) } ?? "000"
            case "num_connects": out += h.map { $0.reused ? "0" : "1" } ?? "0"
            case "reused": out += h.map { $0.reused ? "1" : "0" } ?? "0"
            case "connection_id": out += h.map { String($0.connectionID) } ?? "0"
            case "time_total": out += secs(end?.totalMicros ?? 0)
            case "time_queue": out += secs(h?.queueMicros ?? 0)
            case "time_connect": out += secs(h?.connectMicros ?? 0)
            case "time_appconnect": out += secs(h.map { $0.tlsMicros == 0 ? 0 : $0.connectMicros + $0.tlsMicros } ?? 0)
            case "time_starttransfer": out += secs(h?.firstByteMicros ?? 0)
            case "size_download": out += String(end?.bodyBytes ?? 0)
            case "pooled": out += pooled ? "1" : "0"
            case "http_version":
                out += h?.versionName ?? "0"
            default: out += "%{\(name)}"
            }
        }
        return out
    }
}
