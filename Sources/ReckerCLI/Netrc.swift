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
        var tokens = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).map(String.init)[...]
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

    /// USER:PASS for `host`: its machine entry, else the default one.
    func credentials(for host: String) -> String? {
        let h = host.lowercased()
        let entry = entries.first { $0.machine == h } ?? entries.first { $0.machine == nil }
        guard let login = entry?.login else { return nil }
        return login + ":" + (entry?.password ?? "")
    }

    /// The file -n reads: $NETRC, else ~/.netrc.
    static func defaultPath() -> String? {
        if let p = getenv("NETRC").map({ String(cString: $0) }), !p.isEmpty { return p }
        return getenv("HOME").map { String(cString: $0) + "/.netrc" }
    }
}
