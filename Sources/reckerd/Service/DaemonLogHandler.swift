import CReckerSystemd
import Glibc
import Logging
import ReckerSession
import Synchronization

/// Logs to the journal when stderr is the journal (under systemd), with the priority and
/// fields such as DOMAIN and REQUEST_ID; to stderr otherwise, each line led by its time
/// (RFC 3339, UTC, milliseconds) and its level, `warning` included. The level is shared
/// and changes on reload.
///
/// What is logged never holds header values, bodies or query strings: callers log
/// `Redact.url(_:)`, never a raw URL.
struct DaemonLogHandler: LogHandler {
    static let level = Mutex<Logger.Level>(.info)

    let label: String
    let journal: Bool
    var metadata: Logger.Metadata = [:]

    var logLevel: Logger.Level {
        get { Self.level.withLock { $0 } }
        set { Self.level.withLock { $0 = newValue } }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        if journal {
            let fields = all.sorted { $0.key < $1.key }.map { "\($0.key.uppercased())=\($0.value)" }
            var pointers = fields.map { strdup($0) }
            defer { pointers.forEach { free($0) } }
            pointers.withUnsafeMutableBufferPointer { buf in
                buf.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buf.count) { base in
                    _ = recker_journal_send(Self.priority(event.level), label, "\(event.message)", base, buf.count)
                }
            }
        } else {
            let meta = all.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
            Self.writeStderr("\(Self.timestamp()) \(label): \(event.level) \(event.message)\(meta)\n")
        }
    }

    /// Now as RFC 3339 in UTC with milliseconds: `2026-11-27T07:53:33.123Z`.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return timestamp(seconds: now.tv_sec, milliseconds: now.tv_nsec / 1_000_000)
    }

    /// `seconds` since the epoch (and `milliseconds` past them) as RFC 3339 in UTC.
    static func timestamp(seconds: Int, milliseconds: Int) -> String {
        var t = seconds
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let ms = milliseconds < 10 ? "00\(milliseconds)" : milliseconds < 100 ? "0\(milliseconds)" : "\(milliseconds)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ms)Z"
    }

    /// One whole line to stderr, a single write where the line fits the pipe's atomic size,
    /// so lines of several threads do not interleave.
    static func writeStderr(_ line: String) {
        var bytes = Array(line.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            done += n
        }
    }

    /// syslog priorities, as the journal expects them.
    static func priority(_ level: Logger.Level) -> Int32 {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }
}

extension Logger.Level {
    /// The logger's level for a line a session's machine asks for.
    init(_ level: LogLevel) {
        switch level {
        case .debug: self = .debug
        case .info: self = .info
        case .notice: self = .notice
        case .warning: self = .warning
        case .error: self = .error
        }
    }
}
