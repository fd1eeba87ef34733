#if canImport(Glibc)
import Glibc
#endif

/// A .netrc file as curl reads it (-n, --netrc-file, --netrc-optional): `machine NAME login
/// USER password PASS` entries and a `default` one; `macdef` blocks skipped.
struct Netrc {
    struct Entry: Equatable {
        var machine: String?
        var login: String?
        var password: String?
    }

    var entries: [Entry] = []

    init(_ text: String) {
        // (\.isWhitespace: "\r\n" is one Character to Swift, and CRLF files are common.)
        var tokens = Self.tokens(text)[...]
        var current: Entry?
        while let t = tokens.popFirst() {
            switch t {
            case "machine":
                if let c = current { entries.append(c) }
                current = Entry(machine: tokens.popFirst()?.lowercased())
            case "default":
                if let c = current { entries.append(c) }
                current = Entry(machine: nil)
            case "login": current?.login = tokens.popFirst()
            case "password": current?.password = tokens.popFirst()
            case "account": _ = tokens.popFirst()
            case "macdef":
                // A macro runs to the next empty line; its words are not entries.
                _ = tokens.popFirst()
                if let c = current { entries.append(c) }
                current = nil
            default: break
            }
        }
        if let c = current { entries.append(c) }
    }

    /// The file's words; a double-quoted one may hold spaces and \" \\ escapes (curl 7.88).
    static func tokens(_ text: String) -> [String] {
        var out: [String] = []
        var chars = Substring(text)
        while true {
            chars = chars.drop { $0.isWhitespace }
            guard let first = chars.first else { return out }
            if first == "\"" {
                var word = ""
                chars = chars.dropFirst()
                while let c = chars.first {
                    chars = chars.dropFirst()
                    if c == "\"" { break }
                    if c == "\\", let e = chars.first {
                        chars = chars.dropFirst()
                        word.append(e)
                        continue
                    }
                    word.append(c)
                }
                out.append(word)
            } else {
                let word = chars.prefix { !$0.isWhitespace }
                chars = chars.dropFirst(word.count)
                out.append(String(word))
            }
        }
    }

    /// USER:PASS for `host`: its machine entry, else the default one.
    func credentials(for host: String) -> String? {
        let h = host.lowercased()
        let entry = entries.first { $0.machine == h } ?? entries.first { $0.machine == nil }
        guard let entry, entry.login != nil || entry.password != nil else { return nil }
        return (entry.login ?? "") + ":" + (entry.password ?? "")
    }

    /// The file -n reads: $NETRC, else ~/.netrc.
    static func defaultPath() -> String? {
        if let p = getenv("NETRC").map({ String(cString: $0) }), !p.isEmpty { return p }
        return getenv("HOME").map { String(cString: $0) + "/.netrc" }
    }
}
