/// Where something stands in the config file: 1-based line and column (in characters).
struct ConfigPosition: Equatable, CustomStringConvertible {
    var line: Int
    var column: Int

    var description: String { "\(line):\(column)" }
}

/// A JSON value of the config file with the position it starts at, so a refusal can point
/// at it. Objects keep their keys in file order, with each key's own position.
struct ConfigJSON {
    /// One member of an object.
    struct Member {
        var key: String
        var keyAt: ConfigPosition
        var value: ConfigJSON
    }

    enum Kind {
        case object([Member])
        case array([ConfigJSON])
        case string(String)
        /// The number's literal text, as written (whole or not, checked by the reader).
        case number(String)
        case bool(Bool)
        case null
    }

    var kind: Kind
    var at: ConfigPosition

    /// A syntax error, at the place the parser stopped.
    struct SyntaxError: Error {
        var at: ConfigPosition
        var message: String
    }

    /// Deeper nesting than this is refused: no config needs it, and the parser recurses.
    static let maxDepth = 64

    /// Parses one JSON document (RFC 8259, strictly: no comments, no trailing commas) and
    /// refuses duplicate keys, which RFC 8259 leaves to the reader and which here would
    /// silently drop one of two settings.
    static func parse(_ bytes: [UInt8]) throws(SyntaxError) -> ConfigJSON {
        var p = ConfigJSONParser(bytes: bytes)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { p.i = 3 }
        p.skipSpace()
        let value = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == bytes.count else { throw p.error("unexpected \(p.describeHere()) after the end of the document") }
        return value
    }

    /// The member `key` of an object (nil when absent, or when this is not an object).
    subscript(key: String) -> ConfigJSON? {
        guard case .object(let members) = kind else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// What kind of value this is, for messages ("a string", "a list").
    var kindName: String {
        switch kind {
        case .object: "an object"
        case .array: "a list"
        case .string: "a string"
        case .number: "a number"
        case .bool: "true or false"
        case .null: "null"
        }
    }
}

/// The recursive-descent parser behind `ConfigJSON.parse`, over UTF-8 bytes.
private struct ConfigJSONParser {
    let bytes: [UInt8]
    var i = 0
    var line = 1
    var column = 1

    init(bytes: [UInt8]) { self.bytes = bytes }

    var here: ConfigPosition { ConfigPosition(line: line, column: column) }

    func error(_ message: String, at: ConfigPosition? = nil) -> ConfigJSON.SyntaxError {
        ConfigJSON.SyntaxError(at: at ?? here, message: message)
    }

    /// The character at the cursor, for messages.
    func describeHere() -> String {
        guard i < bytes.count else { return "end of file" }
        let b = bytes[i]
        if b >= 0x21 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        if b == 0x20 { return "a space" }
        if b == 0x09 { return "a tab" }
        return b < 0x80 ? "byte 0x\(String(b, radix: 16))" : "a non-ASCII character"
    }

    /// Moves past one byte, keeping line and column (columns count characters, not bytes).
    mutating func advance() {
        let b = bytes[i]
        i += 1
        if b == UInt8(ascii: "\n") {
            line += 1
            column = 1
        } else if b & 0xC0 != 0x80 {
            column += 1
        }
    }

    mutating func skipSpace() {
        while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { advance() }
    }

    mutating func expect(_ c: UInt8, _ context: @autoclosure () -> String) throws(ConfigJSON.SyntaxError) {
        guard i < bytes.count, bytes[i] == c else {
            throw error("expected '\(Character(Unicode.Scalar(c)))' \(context()), found \(describeHere())")
        }
        advance()
    }

    mutating func value(depth: Int) throws(ConfigJSON.SyntaxError) -> ConfigJSON {
        let at = here
        guard i < bytes.count else { throw error("unexpected end of file: a value is missing") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            guard depth < ConfigJSON.maxDepth else { throw error("nested deeper than \(ConfigJSON.maxDepth) levels") }
            return ConfigJSON(kind: .object(try members(depth: depth + 1)), at: at)
        case UInt8(ascii: "["):
            guard depth < ConfigJSON.maxDepth else { throw error("nested deeper than \(ConfigJSON.maxDepth) levels") }
            return ConfigJSON(kind: .array(try elements(depth: depth + 1)), at: at)
        case UInt8(ascii: "\""):
            return ConfigJSON(kind: .string(try string()), at: at)
        case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"):
            return ConfigJSON(kind: .number(try number()), at: at)
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            for (word, kind) in [("true", ConfigJSON.Kind.bool(true)), ("false", .bool(false)), ("null", .null)]
            where bytes[i...].starts(with: word.utf8) {
                for _ in word.utf8 { advance() }
                return ConfigJSON(kind: kind, at: at)
            }
        case UInt8(ascii: "/"):
            throw error("comments are not JSON; remove them")
        case UInt8(ascii: "'"):
            throw error("strings take double quotes (\"), not single ones")
        default:
            break
        }
        throw error("expected a value (an object, a list, a string in double quotes, a number, true, false or null), found \(describeHere())")
    }

    mutating func members(depth: Int) throws(ConfigJSON.SyntaxError) -> [ConfigJSON.Member] {
        advance()
        var out: [ConfigJSON.Member] = []
        var firstAt: [String: ConfigPosition] = [:]
        skipSpace()
        if i < bytes.count && bytes[i] == UInt8(ascii: "}") {
            advance()
            return out
        }
        while true {
            skipSpace()
            let keyAt = here
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else {
                if i < bytes.count && bytes[i] == UInt8(ascii: "}") && !out.isEmpty {
                    throw error("trailing comma before '}': JSON allows none after the last member")
                }
                if i < bytes.count && bytes[i] == UInt8(ascii: "/") { throw error("comments are not JSON; remove them") }
                throw error("expected a key in double quotes, found \(describeHere())")
            }
            let key = try string()
            if let first = firstAt[key] {
                throw error("duplicate key \"\(key)\" (first at line \(first.line), column \(first.column))", at: keyAt)
            }
            firstAt[key] = keyAt
            skipSpace()
            try expect(UInt8(ascii: ":"), "after the key \"\(key)\"")
            skipSpace()
            out.append(ConfigJSON.Member(key: key, keyAt: keyAt, value: try value(depth: depth)))
            skipSpace()
            guard i < bytes.count else { throw error("unexpected end of file: '}' is missing") }
            if bytes[i] == UInt8(ascii: "}") {
                advance()
                return out
            }
            try expect(UInt8(ascii: ","), "or '}' after the value of \"\(key)\"")
        }
    }

    mutating func elements(depth: Int) throws(ConfigJSON.SyntaxError) -> [ConfigJSON] {
        advance()
        var out: [ConfigJSON] = []
        skipSpace()
        if i < bytes.count && bytes[i] == UInt8(ascii: "]") {
            advance()
            return out
        }
        while true {
            skipSpace()
            if i < bytes.count && bytes[i] == UInt8(ascii: "]") && !out.isEmpty {
                throw error("trailing comma before ']': JSON allows none after the last element")
            }
            out.append(try value(depth: depth))
            skipSpace()
            guard i < bytes.count else { throw error("unexpected end of file: ']' is missing") }
            if bytes[i] == UInt8(ascii: "]") {
                advance()
                return out
            }
            try expect(UInt8(ascii: ","), "or ']' after a list element")
        }
    }

    mutating func string() throws(ConfigJSON.SyntaxError) -> String {
        let start = here
        advance()
        var utf8: [UInt8] = []
        while true {
            guard i < bytes.count else { throw error("unterminated string (it starts at line \(start.line), column \(start.column))") }
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\""):
                advance()
                guard let s = String(validating: utf8, as: UTF8.self) else {
                    throw error("the string is not valid UTF-8", at: start)
                }
                return s
            case UInt8(ascii: "\\"):
                advance()
                try escape(into: &utf8)
            case 0x00 ..< 0x20:
                throw error(b == 0x0A ? "unterminated string: a line break inside it (write \\n)" : "a control character inside a string (escape it)")
            default:
                utf8.append(b)
                advance()
            }
        }
    }

    mutating func escape(into utf8: inout [UInt8]) throws(ConfigJSON.SyntaxError) {
        guard i < bytes.count else { throw error("unterminated string") }
        let simple: [UInt8: UInt8] = [
            UInt8(ascii: "\""): 0x22, UInt8(ascii: "\\"): 0x5C, UInt8(ascii: "/"): 0x2F, UInt8(ascii: "b"): 0x08,
            UInt8(ascii: "f"): 0x0C, UInt8(ascii: "n"): 0x0A, UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09,
        ]
        if let c = simple[bytes[i]] {
            utf8.append(c)
            advance()
            return
        }
        guard bytes[i] == UInt8(ascii: "u") else { throw error("unknown escape \\\(describeHere()) in a string") }
        advance()
        var scalar = try hex4()
        if (0xD800 ..< 0xDC00).contains(scalar) {
            guard bytes[i...].starts(with: [UInt8(ascii: "\\"), UInt8(ascii: "u")]) else {
                throw error("a \\u escape of a high surrogate must be followed by its low surrogate")
            }
            advance()
            advance()
            let low = try hex4()
            guard (0xDC00 ..< 0xE000).contains(low) else { throw error("a \\u escape of a high surrogate must be followed by its low surrogate") }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        }
        guard let u = Unicode.Scalar(scalar) else { throw error("\\u escape of a lone surrogate") }
        utf8.append(contentsOf: String(Character(u)).utf8)
    }

    mutating func hex4() throws(ConfigJSON.SyntaxError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0 ..< 4 {
            guard i < bytes.count, let d = Self.hexDigit(bytes[i]) else { throw error("a \\u escape needs four hex digits") }
            v = v << 4 | d
            advance()
        }
        return v
    }

    static func hexDigit(_ b: UInt8) -> UInt32? {
        switch b {
        case UInt8(ascii: "0") ... UInt8(ascii: "9"): UInt32(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a") ... UInt8(ascii: "f"): UInt32(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A") ... UInt8(ascii: "F"): UInt32(b - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// A number per RFC 8259's grammar; its text is kept for the reader to convert.
    mutating func number() throws(ConfigJSON.SyntaxError) -> String {
        let start = i
        func isDigit(_ j: Int) -> Bool { j < bytes.count && bytes[j] >= UInt8(ascii: "0") && bytes[j] <= UInt8(ascii: "9") }
        if bytes[i] == UInt8(ascii: "-") { advance() }
        guard isDigit(i) else { throw error("a number needs digits after '-'") }
        if bytes[i] == UInt8(ascii: "0") && isDigit(i + 1) { throw error("a number may not start with 0 (leading zeros are not JSON)") }
        while isDigit(i) { advance() }
        if i < bytes.count && bytes[i] == UInt8(ascii: ".") {
            advance()
            guard isDigit(i) else { throw error("a number needs digits after '.'") }
            while isDigit(i) { advance() }
        }
        if i < bytes.count && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
            advance()
            if i < bytes.count && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { advance() }
            guard isDigit(i) else { throw error("a number needs digits in its exponent") }
            while isDigit(i) { advance() }
        }
        return String(decoding: bytes[start ..< i], as: UTF8.self)
    }
}
