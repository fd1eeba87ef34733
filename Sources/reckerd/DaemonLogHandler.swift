import CReckerSystemd
import Foundation
import Logging
import Synchronization

/// Logs to the journal when stderr is the journal (under systemd), with the priority and
/// fields such as DOMAIN and REQUEST_ID; to stderr otherwise. The level is shared and
/// changes on reload.
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
            FileHandle.standardError.write(Data("\(label): \(event.level) \(event.message)\(meta)\n".utf8))
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

/// What may be logged of a request.
enum Redact {
    /// scheme://host:port/path — no user info, no query string, no fragment.
    static func url(_ url: String) -> String {
        var s = Substring(url)
        if let q = s.firstIndex(where: { $0 == "?" || $0 == "#" }) { s = s[..<q] }
        if let scheme = s.range(of: "://") {
            let rest = s[scheme.upperBound...]
            let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@") {
                return String(s[..<scheme.upperBound]) + String(rest[rest.index(after: at)...])
            }
        }
        return String(s)
    }
}
