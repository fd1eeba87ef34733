/// curl's URL globbing: `{a,b,c}` sets and `[1-10]`, `[01-10]`, `[a-z]`, `[1-10:2]` ranges,
/// expanded to every URL they name, the last pattern varying fastest (as curl fetches
/// them). `#N` in an output name is the Nth pattern's value for each URL. `\{`, `\[` and
/// their closing brackets are literal; `-g`/`--globoff` turns globbing off.
enum URLGlob {
    /// The most URLs one argument may expand to (curl refuses far fewer than it could fetch).
    static let maxURLs = 100_000

    struct Expanded: Equatable {
        var url: String
        /// Each pattern's value for this URL, in the order the patterns appear.
        var values: [String]
    }

    private enum Piece {
        case literal(String)
        case choices([String])
    }

    /// Every URL `pattern` names; an argument without patterns is itself.
    static func expand(_ pattern: String) throws(UsageError) -> [Expanded] {
        var pieces: [Piece] = []
        var literal = ""
        var chars = Array(pattern)
        var i = 0
        func bad(_ why: String) -> UsageError {
            UsageError("bad URL glob in \(pattern) at position \(i + 1): \(why) (use -g to send [ ] { } as they are)", exitCode: 3)
        }
        while i < chars.count {
            let c = chars[i]
            if c == "\\", i + 1 < chars.count, "{}[]".contains(chars[i + 1]) {
                literal.append(chars[i + 1])
                i += 2
                continue
            }
            if c == "{" {
                // Its choices, split at commas; \, \{ \} are literal inside (as curl).
                var choices: [String] = [""]
                var k = i + 1
                var closed = false
                while k < chars.count {
                    let d = chars[k]
                    if d == "\\", k + 1 < chars.count, ",{}[]".contains(chars[k + 1]) {
                        choices[choices.count - 1].append(chars[k + 1])
                        k += 2
                        continue
                    }
                    if d == "}" { closed = true; break }
                    if d == "{" || d == "[" { throw bad("nested patterns") }
                    if d == "," { choices.append("") } else { choices[choices.count - 1].append(d) }
                    k += 1
                }
                guard closed else { throw bad("unmatched {") }
                guard k > i + 1 else { throw bad("empty {}") }
                pieces.append(.literal(literal))
                literal = ""
                pieces.append(.choices(choices))
                i = k + 1
                continue
            }
            if c == "[" {
                guard let close = chars[(i + 1)...].firstIndex(of: "]") else { throw bad("unmatched [") }
                let body = String(chars[(i + 1) ..< close])
                // An IPv6 address literal in brackets is not a range (curl takes it so too).
                if pieces.isEmpty && literal.hasSuffix("://") || body.contains(":") && body.filter({ $0 == ":" }).count > 1 {
                    literal += "[" + body + "]"
                    i = close + 1
                    continue
                }
                guard let values = range(body) else { throw bad("bad range [\(body)]") }
                pieces.append(.literal(literal))
                literal = ""
                pieces.append(.choices(values))
                i = close + 1
                continue
            }
            if c == "}" || c == "]" { throw bad("unmatched \(c)") }
            literal.append(c)
            i += 1
        }
        pieces.append(.literal(literal))
        chars = []

        var total = 1
        for case .choices(let v) in pieces {
            total *= v.count
            guard total <= maxURLs else {
                throw UsageError("bad URL glob in \(pattern): more than \(maxURLs) URLs", exitCode: 3)
            }
        }
        var out: [Expanded] = [Expanded(url: "", values: [])]
        for piece in pieces {
            switch piece {
            case .literal(let s):
                for k in out.indices { out[k].url += s }
            case .choices(let values):
                out = out.flatMap { e in values.map { Expanded(url: e.url + $0, values: e.values + [$0]) } }
            }
        }
        return out
    }

    /// `a-z`, `1-10`, `01-10` (zero-padded to the width of the first), with `:STEP`.
    private static func range(_ body: String) -> [String]? {
        var spec = Substring(body)
        var step = 1
        if let colon = spec.lastIndex(of: ":") {
            guard let s = Int(spec[spec.index(after: colon)...]), s > 0 else { return nil }
            step = s
            spec = spec[..<colon]
        }
        let ends = spec.split(separator: "-", omittingEmptySubsequences: false)
        guard ends.count == 2, !ends[0].isEmpty, !ends[1].isEmpty else { return nil }
        if ends[0].count == 1, ends[1].count == 1, let a = ends[0].first, let b = ends[1].first, a.isLetter, b.isLetter,
           a.isLowercase == b.isLowercase, let av = a.asciiValue, let bv = b.asciiValue, av <= bv {
            guard av == bv || step <= Int(bv - av) else { return nil }
            return stride(from: Int(av), through: Int(bv), by: step).map { String(UnicodeScalar(UInt8($0))) }
        }
        guard ends[0].allSatisfy(\.isNumber), ends[1].allSatisfy(\.isNumber), ends[0].count <= 18, ends[1].count <= 18,
              let from = Int(ends[0]), let to = Int(ends[1]), from <= to, (to - from) / step < maxURLs,
              from == to || step <= to - from else { return nil }
        let width = ends[0].hasPrefix("0") ? ends[0].count : 0
        return stride(from: from, through: to, by: step).map { n in
            let digits = String(n)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
    }

    /// An output name with `#N` replaced by the Nth pattern's value (`#N` past the
    /// patterns stays as written, as curl leaves it).
    static func outputName(_ template: String, _ values: [String]) -> String {
        var out = ""
        var chars = Substring(template)
        while let c = chars.first {
            chars = chars.dropFirst()
            if c == "#", let d = chars.first, d.isNumber {
                let digits = chars.prefix { $0.isNumber }
                if let n = Int(digits), n >= 1, n <= values.count {
                    out += values[n - 1]
                    chars = chars.dropFirst(digits.count)
                    continue
                }
            }
            out.append(c)
        }
        return out
    }
}
