#if canImport(Glibc)
import Glibc
#endif

/// curl's config-file syntax (`-K FILE`, `~/.curlrc`): one option per line, with or without
/// its dashes (`url = "…"`, `-o out`, `silent`), its value after spaces, `=` or `:`, in
/// double quotes with \\ \" \t \n \r \v escapes or bare up to the next space; `#` comments.
enum CurlConfig {
    static func arguments(_ text: String) throws(UsageError) -> [String] {
        var out: [String] = []
        for raw in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            var line = raw.drop { $0 == " " || $0 == "\t" }
            guard let first = line.first, first != "#" else { continue }
            let nameEnd = line.firstIndex { $0 == " " || $0 == "\t" || (first != "-" && ($0 == "=" || $0 == ":")) } ?? line.endIndex
            var name = String(line[..<nameEnd])
            line = line[nameEnd...].drop { $0 == " " || $0 == "\t" }
            if first != "-" {
                name = "--" + name
                if let sep = line.first, sep == "=" || sep == ":" { line = line.dropFirst().drop { $0 == " " || $0 == "\t" } }
            }
            let long = name.hasPrefix("--") ? name.lowercased()
                : name.count == 2 ? Options.shortFlags[name.last!] ?? name : name
            out.append(name)
            guard Options.valueFlags.contains(long) else { continue }
            if line.first == "\"" {
                var value = ""
                var chars = line.dropFirst()
                var closed = false
                while let c = chars.first {
                    chars = chars.dropFirst()
                    if c == "\"" { closed = true; break }
                    if c == "\\", let e = chars.first {
                        chars = chars.dropFirst()
                        switch e {
                        case "t": value.append("\t")
                        case "n": value.append("\n")
                        case "r": value.append("\r")
                        case "v": value.append("\u{0B}")
                        default: value.append(e)
                        }
                        continue
                    }
                    value.append(c)
                }
                guard closed else { throw UsageError("config file: unterminated quote in the value of \(name)") }
                out.append(value)
            } else {
                out.append(String(line.prefix { $0 != " " && $0 != "\t" }))
            }
        }
        return out
    }

    /// The file curl reads before its command line: $CURL_HOME/.curlrc, $XDG_CONFIG_HOME/.curlrc,
    /// $HOME/.curlrc, the first that exists.
    static func defaultFile() -> [UInt8]? {
        for variable in ["CURL_HOME", "XDG_CONFIG_HOME", "HOME"] {
            guard let dir = getenv(variable).map({ String(cString: $0) }), !dir.isEmpty else { continue }
            let path = dir + "/.curlrc"
            if access(path, R_OK) == 0, let bytes = try? readAll(path) { return bytes }
        }
        return nil
    }
}

/// `--proto` and `--proto-redir` lists: `=https` (only), `+http` or `http` (add), `-http`
/// (remove), `all`, comma-separated, applied in order.
enum Protocols {
    static let known: Set<String> = ["http", "https"]

    static func parse(_ text: String, _ flag: String) throws(UsageError) -> Set<String> {
        var allowed = known
        for item in text.split(separator: ",") {
            var word = String(item).trimming(" ").lowercased()
            var op: Character = "+"
            if let c = word.first, "=+-".contains(c) {
                op = c
                word.removeFirst()
            }
            let names: Set<String> = word == "all" ? known : [word]
            switch op {
            case "=": allowed = names
            case "-": allowed.subtract(names)
            default: allowed.formUnion(names)
            }
        }
        return allowed
    }
}
