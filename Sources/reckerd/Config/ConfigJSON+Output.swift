import ReckerProtocol

extension ConfigJSON {
    /// A value made by the daemon rather than read from a file (it has no position).
    init(_ kind: Kind) { self.init(kind: kind, at: ConfigPosition(line: 0, column: 0)) }

    static func int(_ n: Int) -> ConfigJSON { ConfigJSON(.number(String(n))) }
    static func string(_ s: String) -> ConfigJSON { ConfigJSON(.string(s)) }
    static func bool(_ b: Bool) -> ConfigJSON { ConfigJSON(.bool(b)) }
    static func object(_ pairs: [(String, ConfigJSON)]) -> ConfigJSON {
        ConfigJSON(.object(pairs.map { Member(key: $0.0, keyAt: ConfigPosition(line: 0, column: 0), value: $0.1) }))
    }

    /// The value as JSON, keys sorted, two spaces an indent level, `"key" : value`: the
    /// layout `reckerd --check-config` has always printed.
    func rendered(indent: Int = 0) -> String {
        let pad = String(repeating: " ", count: indent + 2)
        let close = String(repeating: " ", count: indent)
        switch kind {
        case .object(let members):
            if members.isEmpty { return "{\n\n\(close)}" }
            let lines = members.sorted { $0.key < $1.key }.map {
                pad + Self.quoted($0.key) + " : " + $0.value.rendered(indent: indent + 2)
            }
            return "{\n" + lines.joined(separator: ",\n") + "\n\(close)}"
        case .array(let elements):
            if elements.isEmpty { return "[\n\n\(close)]" }
            return "[\n" + elements.map { pad + $0.rendered(indent: indent + 2) }.joined(separator: ",\n") + "\n\(close)]"
        case .string(let s): return Self.quoted(s)
        case .number(let text): return text
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }

    /// The value as JSON on one line, keys sorted: what the stats document is sent as.
    var compact: String {
        switch kind {
        case .object(let members):
            return "{" + members.sorted { $0.key < $1.key }.map { Self.quoted($0.key) + ":" + $0.value.compact }.joined(separator: ",") + "}"
        case .array(let elements):
            return "[" + elements.map(\.compact).joined(separator: ",") + "]"
        case .string(let s): return Self.quoted(s)
        case .number(let text): return text
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }

    /// A JSON string literal for `s`.
    static func quoted(_ s: String) -> String { JSONText.quoted(s) }
}
