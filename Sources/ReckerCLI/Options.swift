import ReckerProtocol

#if canImport(Glibc)
import Glibc
#endif

/// The command line, parsed by hand in the style of curl (no parser library: `recker`
/// must start in well under a millisecond, and a script may call it hundreds of times).
struct Options {
    var url: String?
    var method: String?
    var headers: [(name: String, value: String)] = []
    var body: [UInt8]?
    var output: String?
    var include = false
    var silent = false
    var showError = false
    var fail = false
    var writeOut: String?
    var headOnly = false
    var socket: String?
    var request = RequestOptions()
    var stats = false
    /// Fetch directly when no daemon listens (`--fallback` or RECKER_FALLBACK=1).
    var fallback = getenv("RECKER_FALLBACK").map { String(cString: $0) == "1" } ?? false
    var batch = false
    var concurrency = 10
    var outputDir: String?
    /// Print the version and exit.
    var version = false
    /// STATS_REQUEST format: 0 JSON, 1 Prometheus, 2 table.
    var statsFormat: UInt8 = 2

    static let usage = """
    usage: recker [options] URL
           recker stats [--json | --prometheus]
           recker batch [-c N] [--output-dir DIR] [FILE | -]
      -X, --request METHOD     request method (default GET, or POST with -d)
      -H, --header 'N: V'      add a request header (repeatable)
      -d, --data DATA          send DATA as the body; @FILE reads a file (newlines removed), @- stdin
          --data-binary DATA   like -d, but @FILE is sent byte for byte
      -o, --output FILE        write the body to FILE instead of stdout
      -i, --include            print the response head before the body
      -I, --head               send a HEAD request and print the head
      -s, --silent             no error messages (see -S)
      -S, --show-error         with -s, still print errors
      -f, --fail               exit 22 on an HTTP status >= 400, print no body
      -L, --location           follow redirects (up to 50)
          --compressed         ask for a compressed response and decode it
          --connect-timeout S  seconds allowed for a new upstream connection
      -m, --max-time S         seconds allowed for the whole request
      -w, --write-out FORMAT   print FORMAT after the transfer: %{http_code} %{num_connects}
                               %{reused} %{connection_id} %{time_total} %{time_queue}
                               %{time_connect} %{time_appconnect} %{time_starttransfer}
                               %{size_download} %{http_version} %{pooled}
          --socket PATH        reckerd's socket (default: $RECKER_SOCKET, then the usual places)
          --fallback           with no daemon listening, fetch directly, not pooled (also RECKER_FALLBACK=1)
      -A, --user-agent NAME    the User-Agent header (default recker/VERSION)
      -V, --version            print recker's version and protocol version
      -h, --help               this text
    batch: one request per input line (a URL, or {"method","url","headers","body"} JSON),
      sent over one connection with at most N in flight (-c, default 10); one JSON line per
      result as it completes, then a summary line. --output-dir writes bodies to DIR/INDEX.
    """

    /// Parses `args` (without the program name); a `UsageError` names what is wrong.
    static func parse(_ arguments: [String]) throws(UsageError) -> Options {
        var args = arguments
        var o = Options()
        var i = 0
        func value(_ flag: String) throws(UsageError) -> String {
            i += 1
            guard i < args.count else { throw UsageError("option \(flag) needs a value") }
            return args[i]
        }
        func seconds(_ flag: String) throws(UsageError) -> UInt32 {
            let text = try value(flag)
            guard let s = Double(text), s > 0, s < 4_000_000 else { throw UsageError("option \(flag): bad number of seconds \(text)") }
            return UInt32(s * 1000)
        }
        var dataArgs: [(String, binary: Bool)] = []
        while i < args.count {
            let a = args[i]
            switch a {
            case "-X", "--request":
                o.method = try value(a)
                // As curl: a method named with -X stays across 301/302/303.
                o.request.keepMethod = true
            case "-H", "--header":
                let h = try value(a)
                guard let colon = h.firstIndex(of: ":") else { throw UsageError("header '\(h)' has no colon") }
                let name = String(h[..<colon])
                let v = h[h.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
                o.headers.append((name: name, value: String(v)))
            case "-d", "--data", "--data-ascii": dataArgs.append((try value(a), binary: false))
            case "--data-binary": dataArgs.append((try value(a), binary: true))
            case "-o", "--output": o.output = try value(a)
            case "-i", "--include": o.include = true
            case "-I", "--head": o.headOnly = true; o.include = true
            case "-s", "--silent": o.silent = true
            case "-S", "--show-error": o.showError = true
            case "-f", "--fail": o.fail = true
            case "-L", "--location": o.request.followRedirects = 50
            case "--compressed": o.request.compressed = true
            case "--connect-timeout": o.request.connectTimeoutMs = try seconds(a)
            case "-m", "--max-time": o.request.totalTimeoutMs = try seconds(a)
            case "-w", "--write-out": o.writeOut = try value(a)
            case "--socket", "--unix-socket": o.socket = try value(a)
            case "--fallback": o.fallback = true
            case "-c", "--concurrency":
                let v = try value(a)
                guard let n = Int(v), n > 0 else { throw UsageError("option \(a): bad number \(v)") }
                o.concurrency = n
            case "--output-dir": o.outputDir = try value(a)
            case "--json": o.statsFormat = 0
            case "--prometheus": o.statsFormat = 1
            case "-A", "--user-agent": o.headers.append((name: "User-Agent", value: try value(a)))
            case "-V", "--version": o.version = true
            case "-h", "--help": throw UsageError(nil)
            default:
                if a.hasPrefix("-") && a.count > 2 && !a.hasPrefix("--") {
                    // Bundled short flags, as in curl: -sS, -fsSL; a value-taking flag may come last.
                    args.replaceSubrange(i ... i, with: a.dropFirst().map { "-\($0)" })
                    continue
                } else if a.hasPrefix("-") && a != "-" {
                    throw UsageError("unknown option \(a)")
                } else if a == "stats" && o.url == nil && !o.stats && !o.batch {
                    o.stats = true
                } else if a == "batch" && o.url == nil && !o.stats && !o.batch {
                    o.batch = true
                } else {
                    guard o.url == nil else { throw UsageError("only one URL per call (got \(o.url!) and \(a))") }
                    o.url = a
                }
            }
            i += 1
        }
        if !dataArgs.isEmpty {
            var body: [UInt8] = []
            for (n, d) in dataArgs.enumerated() {
                if n > 0 { body.append(UInt8(ascii: "&")) }
                body += try Self.data(d.0, binary: d.binary)
            }
            o.body = body
            if !o.headers.contains(where: { $0.name.lowercased() == "content-type" }) {
                o.headers.append((name: "Content-Type", value: "application/x-www-form-urlencoded"))
            }
        }
        guard o.stats || o.batch || o.version || o.url != nil else { throw UsageError("no URL given") }
        return o
    }

    /// The bytes of a -d argument: literal, or @FILE / @- read whole.
    private static func data(_ arg: String, binary: Bool) throws(UsageError) -> [UInt8] {
        guard arg.hasPrefix("@") else { return Array(arg.utf8) }
        let out = try readAll(String(arg.dropFirst()))
        return binary ? out : out.filter { $0 != 0x0A && $0 != 0x0D }
    }
}

/// A whole file, or standard input for "-".
func readAll(_ path: String) throws(UsageError) -> [UInt8] {
    let fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw UsageError("cannot read \(path): \(String(cString: strerror(errno)))", exitCode: 26) }
    defer { if fd != 0 { close(fd) } }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n >= 0 else { throw UsageError("cannot read \(path): \(String(cString: strerror(errno)))", exitCode: 26) }
        if n == 0 { break }
        out += chunk[0 ..< n]
    }
    return out
}

/// A command-line mistake; nil message means "print the usage".
struct UsageError: Error {
    var message: String?
    var exitCode: Int32
    init(_ message: String?, exitCode: Int32 = 2) {
        self.message = message
        self.exitCode = exitCode
    }
}
