/// A parsed JSON document (RFC 8259), for the stats document: the library uses no
/// Foundation. Numbers keep their text, so integers are read exactly.
enum JSONValue: Equatable {
    case object([String: JSONValue])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// Nesting deeper than this is refused rather than recursed into.
    static let maxDepth = 64

    /// Parses a whole document; anything else is `MALFORMED_FRAME` with the offset.
    init(parsing bytes: [UInt8]) throws(ReckerError) {
        var p = Parser(bytes: bytes)
        self = try p.value(depth: 0)
        p.skipSpace()
        guard p.index == bytes.count else { throw p.failure("text after the document") }
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { o[key] } else { nil }
    }

    var int: Int? {
        guard case .number(let text) = self else { return nil }
        return Int(text) ?? Double(text).flatMap { Int(exactly: $0.rounded()) }
    }

    var double: Double? {
        if case .number(let text) = self { Double(text) } else { nil }
    }

    var string: String? {
        if case .string(let s) = self { s } else { nil }
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        func failure(_ what: String) -> ReckerError {
            ReckerError(.malformedFrame, "the stats document is not valid JSON: \(what) at byte \(index)")
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func expect(_ literal: String) throws(ReckerError) {
            let l = Array(literal.utf8)
            guard bytes.count - index >= l.count, Array(bytes[index ..< index + l.count]) == l else {
                throw failure("expected \(literal)")
            }
            index += l.count
        }

        mutating func value(depth: Int) throws(ReckerError) -> JSONValue {
            guard depth < JSONValue.maxDepth else { throw failure("nesting deeper than \(JSONValue.maxDepth)") }
            skipSpace()
            guard index < bytes.count else { throw failure("unexpected end") }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var o: [String: JSONValue] = [:]
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(o) }
                while true {
                    skipSpace()
                    let key = try string()
                    skipSpace()
                    try expect(":")
                    o[key] = try value(depth: depth + 1)
                    skipSpace()
                    guard index < bytes.count else { throw failure("unterminated object") }
                    if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(o) }
                    try expect(",")
                }
            case UInt8(ascii: "["):
                index += 1
                var a: [JSONValue] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(a) }
                while true {
                    a.append(try value(depth: depth + 1))
                    skipSpace()
                    guard index < bytes.count else { throw failure("unterminated array") }
                    if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(a) }
                    try expect(",")
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            default: return .number(try number())
            }
        }

        mutating func number() throws(ReckerError) -> String {
            let start = index
            while index < bytes.count, "+-0123456789.eE".utf8.contains(bytes[index]) { index += 1 }
            let text = String(decoding: bytes[start ..< index], as: UTF8.self)
            guard !text.isEmpty, Double(text) != nil else {
                index = start
                throw failure("not a value")
            }
            return text
        }

        mutating func string() throws(ReckerError) -> String {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw failure("expected a string") }
            index += 1
            var out: [UInt8] = []
            while index < bytes.count {
                let c = bytes[index]
                index += 1
                switch c {
                case UInt8(ascii: "\""):
                    guard let s = String(validating: out, as: UTF8.self) else { throw failure("a string is not UTF-8") }
                    return s
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { throw failure("unterminated string") }
                    let e = bytes[index]
                    index += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"): out += try unicodeEscape()
                    default: throw failure("a bad escape")
                    }
                case 0 ..< 0x20: throw failure("a control character in a string")
                default: out.append(c)
                }
            }
            throw failure("unterminated string")
        }

        /// `\uXXXX`, with a surrogate pair as one scalar; a lone surrogate becomes U+FFFD.
        mutating func unicodeEscape() throws(ReckerError) -> [UInt8] {
            var v = try hex4()
            if (0xD800 ..< 0xDC00).contains(v), bytes.count - index >= 6,
               bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                index += 2
                let low = try hex4()
                v = (0xDC00 ..< 0xE000).contains(low) ? 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00) : 0xFFFD
            }
            return Array(String(Unicode.Scalar(v) ?? "\u{FFFD}").utf8)
        }

        mutating func hex4() throws(ReckerError) -> UInt32 {
            guard bytes.count - index >= 4,
                  let v = UInt32(String(decoding: bytes[index ..< index + 4], as: UTF8.self), radix: 16) else {
                throw failure("a bad \\u escape")
            }
            index += 4
            return v
        }
    }
}
