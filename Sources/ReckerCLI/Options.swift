import ReckerProtocol

#if canImport(Glibc)
import Glibc
#endif

/// The command line, parsed by hand in the style of curl (no parser library: `recker`
/// must start in well under a millisecond, and a script may call it hundreds of times).
struct Options {
    /// One URL to fetch, after globbing, and where its body goes.
    struct Target: Equatable {
        var url: String
        /// The URL as the command line gave it, glob patterns expanded (%{url}).
        var given: String
        var output: String?
        /// The file -T sends to this URL ("-": stdin), paired as -o is: the Nth -T, the Nth URL.
        var upload: String?
        /// Basic credentials from the URL's own userinfo.
        var authorization: String?
        /// The output name came from -O (which -J may replace), not -o.
        var remoteName = false
    }

    /// Every URL the command line names, in the order they are fetched (one after another,
    /// over the one daemon connection, as curl without -Z).
    var targets: [Target] = []
    /// The target being fetched (set from `targets`, one at a time).
    var url: String?
    var givenURL: String?
    var method: String?
    /// Headers from -H, -A, -u, -e, -b, in order; an empty value is sent empty ("Name;").
    var headers: [(name: String, value: String)] = []
    /// Headers -u, -A, -e and -b make: a -H of the same name replaces them, as in curl.
    var generated: [(name: String, value: String)] = []
    /// Lower-cased names given as "-H 'Name:'": sent by no one, not even as a default.
    var removedHeaders: Set<String> = []
    var body: [UInt8]?
    /// The selected URL's output name came from -O.
    var outputIsRemoteName = false
    /// The selected URL's credentials from its userinfo, as an Authorization value.
    var urlAuthorization: String?
    /// The selected URL's -T file, sent as it is read (BodySource).
    var uploadFile: String?
    /// The method -X named, when it did.
    var namedMethod: String?
    /// -H 'Content-Length: N': checked against the body, whose own length is what goes.
    var givenContentLength: String?
    /// The body came from -d, --json or -F: a POST underneath, whatever -X names (curl's
    /// redirect rules follow that, not the name).
    var posts = false
    /// The Content-Type recker chose for -d, --json or -F (dropped with the body on a redirect).
    var automaticContentType: String?
    var output: String?
    var dumpHeader: String?
    var include = false
    var silent = false
    var showError = false
    var fail = false
    var failWithBody = false
    var verbose = false
    var writeOut: String?
    var headOnly = false
    /// -e 'URL;auto': a Referer naming the previous URL on each redirect -L follows.
    var autoReferer = false
    var socket: String?
    /// --proto and --proto-redir: the schemes allowed (nil: http and https).
    var protocols: Set<String>?
    var redirectProtocols: Set<String>?
    /// -C - (from the output file's size) or -C OFFSET.
    enum Resume: Equatable {
        case fromFile
        case at(Int64)
    }
    var resume: Resume?
    /// The byte the body starts at when resuming (set per URL from -C), 0 otherwise.
    var resumeOffset: Int64 = 0
    /// -z DATE or FILE (a leading '-' asks for If-Unmodified-Since).
    var timeCondition: String?
    var remoteTime = false
    var remoteHeaderName = false
    var createDirs = false
    var removeOnError = false
    /// -n, --netrc-optional, --netrc-file FILE (nil: ~/.netrc).
    enum Netrc: Equatable {
        case required(String?)
        case optional(String?)
    }
    var netrc: Netrc?
    var maxFileSize: Int64?
    /// -b FILE (cookie files to read), -c FILE (the jar written at exit), -j.
    var cookieFiles: [String] = []
    var cookieJar: String?
    var junkSessionCookies = false
    /// The cookie engine runs (curl starts it with any -b FILE or -c).
    var cookieEngine: Bool { !cookieFiles.isEmpty || cookieJar != nil }
    /// What this call asks of its own connection, and the first option that asked.
    var direct = DirectSettings()
    var directReason: String?
    var request = RequestOptions()
    /// Follow redirects (-L), client-side, up to `maxRedirects` hops.
    var follow = false
    var maxRedirects = 50
    var retries = 0
    var retryDelaySeconds: Int?
    var retryMaxTimeSeconds: Int?
    var retryConnectionRefused = false
    /// Set for the second URL on: -D appends to what the first wrote.
    var appendDumpHeader = false
    /// --post301/302/303: a POST stays a POST (with its body) across those.
    var keepPost: Set<UInt16> = []
    /// --location-trusted: credentials go on to other hosts on a redirect.
    var locationTrusted = false
    /// --proto-default: the scheme of a URL given without one (http otherwise).
    var defaultScheme = "http"
    /// --fail-early: the first URL that fails ends the call.
    var failEarly = false
    /// --retry-all-errors: any failure may be tried again, if it is retry-safe.
    var retryAllErrors = false
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
    usage: recker [options] URL...
           recker stats [--json | --prometheus]
           recker batch [-c N] [-H 'N: V'] [-f] [--output-dir DIR] [FILE | -]
      -X, --request METHOD     request method (default GET, or POST with -d, PUT with -T)
      -H, --header 'N: V'      add a request header (repeatable); 'N:' sends no N at all,
                               'N;' sends N empty; @FILE reads one header per line
      -d, --data DATA          send DATA as the body; @FILE reads a file (newlines removed), @- stdin
          --data-binary DATA   like -d, but @FILE is sent byte for byte
          --data-raw DATA      like -d, without the @ meaning
          --data-urlencode D   like -d, URL-encoded: content, =content, name=content, @FILE, name@FILE
          --json DATA          JSON body (like --data-binary), Content-Type and Accept application/json
      -F, --form NAME=VALUE    multipart/form-data field; NAME=@FILE uploads a file, NAME=<FILE
                               its contents as the value; ;type=T and ;filename=N after the value
          --form-string N=V    a multipart field taken literally
      -G, --get                put -d data in the URL's query and send a GET
      -T, --upload-file FILE   PUT FILE as the body (- for stdin); a URL ending in / gets FILE's name
      -u, --user USER:PASS     HTTP Basic authentication (Authorization header)
      -A, --user-agent NAME    the User-Agent header (default recker/VERSION)
      -e, --referer URL        the Referer header
      -b, --cookie 'N=V; …'    the Cookie header; without '=', a cookie file to read (Netscape or
                               Set-Cookie lines), which starts recker's cookie engine for this call
      -c, --cookie-jar FILE    write every cookie at exit (- for stdout); cookies are kept by recker
                               for this call only, across -L hops and URLs
      -j, --junk-session-cookies  leave out session cookies read with -b FILE
      -o, --output FILE        write the body to FILE (- for stdout; #N: the Nth glob's value); FILE
                               is replaced only on success. The Nth -o/-O goes with the Nth URL
      -O, --remote-name        write the body to a file named like the URL's last path segment
          --remote-name-all    -O for every URL
      -g, --globoff            no URL globbing: send [ ] { } as they are
      -J, --remote-header-name with -O, the file name Content-Disposition gives (never a path)
          --create-dirs        make the directories above -o's file
          --remove-on-error    leave no partial file behind when a transfer breaks (else it is kept, as curl)
      -C, --continue-at -|N    resume from the output file's size (or byte N), appending
      -r, --range RANGE        ask for bytes RANGE (Range: bytes=RANGE)
      -z, --time-cond D|FILE   If-Modified-Since the date or the file's time (-D: If-Unmodified-Since)
      -R, --remote-time        the file's time from Last-Modified
          --max-filesize N     exit 63 when the answer says it is longer than N bytes
      -n, --netrc              credentials for the host from ~/.netrc (--netrc-file F, --netrc-optional)
      -K, --config FILE        read options from FILE in curl's config syntax (- for stdin)
      -q, --disable            first on the line: do not read ~/.curlrc
          --proto LIST         schemes allowed (=https, -http, ...); --proto-redir for redirects
          --proto-default S    the scheme of a URL given without one (default http)
          --fail-early         stop at the first URL that fails
          --retry-all-errors   retry after any retry-safe failure (and -f's HTTP errors)
      -Z, --parallel           accepted: URLs go one after another (the same outputs and exit code)
          --output-dir DIR     where -o and -O write (batch: one file per item)
      -D, --dump-header FILE   write the response heads to FILE (- for stdout)
      -i, --include            print the response head before the body (with -L, every hop's)
      -I, --head               send a HEAD request and print the head
      -v, --verbose            the request and response heads, the reckerd connection, on stderr
      -s, --silent             no error messages (see -S); --no-silent undoes it
      -S, --show-error         with -s, still print errors
      -f, --fail               exit 22 on an HTTP status >= 400, print no body
          --fail-with-body     exit 22 on an HTTP status >= 400, print the body
      -L, --location           follow redirects (up to --max-redirs N, default 50)
          --max-redirs N       most redirects -L follows (0 … 1000; -1: no limit)
          --post301, --post302, --post303
                               a POST stays a POST, with its body, across that redirect
          --location-trusted   like -L, and credentials go on to other hosts too
          --compressed         ask for a compressed response and decode it
          --connect-timeout S  seconds allowed for a new upstream connection
      -m, --max-time S         seconds allowed for the whole request (0: no limit)
          --retry N            try again up to N times after a timeout, a refused or failed
                               upstream that reckerd marks retry-safe, or an HTTP 408, 429, 500,
                               502, 503, 504 to an idempotent method (waits 1, 2, 4 … s, or Retry-After)
          --retry-delay S      wait S seconds between tries instead
          --retry-max-time S   no new try after S seconds
          --retry-connrefused  also retry when the upstream refuses the connection
      -w, --write-out FORMAT   print FORMAT after the transfer (@FILE reads it, @- stdin): curl's
                               %{variables}, %header{NAME}, %{json}, %{header_json}, %{stderr},
                               %{stdout}, and reckerd's %{reused} %{connection_id} %{time_queue}
                               %{pooled} %{may_have_reached_upstream}
          --socket PATH        reckerd's socket (default: $RECKER_SOCKET, then the usual places)
      URLs may use curl's globs: {a,b}, [1-10], [01-10], [a-z], [1-10:2]; several URLs are
      fetched one after another over one daemon connection; the exit code is the last one's.
    Served by recker-direct in this process, as curl serves them, not pooled (the pool's
      connections are shared by every client): --unix-socket PATH (HTTP to that socket), --cacert, --capath, --resolve, --connect-to, -x/--proxy, -U, --http1.0, --http1.1,
      --http2, --http2-prior-knowledge, -E/--cert, --key, -4, -6.
      -k, --insecure           no certificate checks: pooled, on connections of its own (http: no effect)
          --fallback           with no daemon listening, fetch directly, not pooled (also RECKER_FALLBACK=1)
          --no-progress-meter, -#, --progress-bar, -N, --no-buffer
                               accepted as curl's: recker has no progress meter and never buffers
      -V, --version            print recker's version and protocol version
      -h, --help               this text
    Refused: --http3, --proxy-insecure (each says why).
    batch (-c N is its concurrency there): one request per input line (a URL, or {"method","url","headers","body"} JSON;
      "body_base64" for bytes), sent over one connection with at most N in flight (-c, default
      10); one JSON line per result as it completes, then a summary line. -H adds headers to
      every item, -f counts a status >= 400 as failed, --output-dir (which must exist) writes
      bodies to DIR/INDEX. A body that is not UTF-8 comes as "body_base64".
    """

    /// Long names (and their short letters) that take a value.
    static let valueFlags: Set<String> = [
        "--request", "--header", "--data", "--data-ascii", "--data-binary", "--data-raw", "--data-urlencode",
        "--json", "--form", "--form-string", "--upload-file", "--user", "--user-agent", "--referer", "--cookie",
        "--output", "--output-dir", "--dump-header", "--write-out", "--max-time", "--connect-timeout",
        "--max-redirs", "--retry", "--retry-delay", "--retry-max-time", "--url", "--socket", "--unix-socket",
        "--concurrency", "--cacert", "--capath", "--resolve", "--connect-to", "--proxy", "--noproxy",
        "--cookie-jar", "--proxy-user", "--cert", "--key", "--proto", "--proto-redir", "--ciphers", "--tls-max",
        "--range", "--continue-at", "--time-cond", "--config", "--netrc-file", "--max-filesize", "--parallel-max",
        "--proto-default",
    ]
    /// Short letters and the long name each stands for.
    static let shortFlags: [Character: String] = [
        "X": "--request", "H": "--header", "d": "--data", "F": "--form", "G": "--get", "T": "--upload-file",
        "u": "--user", "A": "--user-agent", "e": "--referer", "b": "--cookie", "o": "--output",
        "O": "--remote-name", "D": "--dump-header", "g": "--globoff", "i": "--include", "I": "--head", "v": "--verbose",
        "s": "--silent", "S": "--show-error", "f": "--fail", "L": "--location", "m": "--max-time",
        "w": "--write-out", "c": "--concurrency", "V": "--version", "h": "--help", "N": "--no-buffer",
        "j": "--junk-session-cookies", "k": "--insecure", "x": "--proxy", "U": "--proxy-user", "0": "--http1.0", "E": "--cert",
        "4": "--ipv4", "6": "--ipv6", "q": "--disable", "#": "--progress-bar", "r": "--range", "C": "--continue-at",
        "Z": "--parallel", "z": "--time-cond", "R": "--remote-time", "J": "--remote-header-name", "K": "--config", "n": "--netrc", "1": "--tlsv1",
    ]
    /// Long names that take no value.
    static let switches: Set<String> = [
        "--get", "--remote-name", "--include", "--head", "--verbose", "--silent", "--show-error", "--fail",
        "--fail-with-body", "--location", "--compressed", "--version", "--help", "--fallback", "--prometheus",
        "--retry-connrefused", "--no-progress-meter", "--no-buffer", "--insecure", "--http1.0", "--http1.1",
        "--http2", "--http2-prior-knowledge", "--http3", "--proxy-insecure", "--globoff", "--remote-name-all",
        "--ipv4", "--ipv6", "--junk-session-cookies", "--disable", "--progress-bar", "--tlsv1", "--tlsv1.0", "--tlsv1.1",
        "--tlsv1.2", "--tlsv1.3", "--remote-time", "--remote-header-name", "--create-dirs", "--remove-on-error", "--netrc",
        "--netrc-optional", "--parallel", "--parallel-immediate", "--retry-all-errors", "--fail-early",
        "--post301", "--post302", "--post303", "--location-trusted", "--no-silent", "--tcp-nodelay", "--no-keepalive", "--styled-output", "--no-styled-output", "--ssl-reqd",
    ]

    /// Why a flag is refused, and what to do instead.
    static func refusal(_ flag: String) -> String? {
        switch flag {
        case "--http3":
            "option --http3: refused: neither reckerd nor recker-direct speaks HTTP/3 (libcurl here is built without it)"
        case "--proxy-insecure":
            "option --proxy-insecure: refused: recker does not turn off a proxy's certificate checks"
        default: nil
        }
    }

    /// Parses `args` (without the program name); a `UsageError` names what is wrong.
    static func parse(_ commandLine: [String]) throws(UsageError) -> Options {
        var o = Options()
        // As curl: ~/.curlrc (or $CURL_HOME's, $XDG_CONFIG_HOME's) first, unless -q comes first.
        var arguments = commandLine
        if commandLine.first != "-q" && commandLine.first != "--disable", let rc = CurlConfig.defaultFile() {
            arguments = try CurlConfig.arguments(String(decoding: rc, as: UTF8.self)) + commandLine
        }
        var parts: [DataPart] = []
        var form: [FormPart] = []
        var get = false
        var uploads: [String] = []
        /// -o FILE and -O, in order: the Nth goes with the Nth URL (as curl pairs them).
        var outputs: [String?] = []
        var remoteNameAll = false
        var globOff = false
        var positional: [String] = []
        var given: [String] = []
        var concurrency: String?
        var i = 0
        var onlyURLs = false
        while i < arguments.count {
            let a = arguments[i]
            i += 1
            if onlyURLs || a == "-" || !a.hasPrefix("-") {
                positional.append(a)
                // "stats --json": the format, not --json DATA.
                if positional.count == 1 && a == "stats" { o.stats = true }
                continue
            }
            if a == "--" { onlyURLs = true; continue }
            var flags: [(name: String, value: String?)] = []
            if a.hasPrefix("--") {
                // curl takes long names in any case (--URL).
                let a = a.lowercased()
                guard valueFlags.contains(a) || switches.contains(a) else { throw UsageError("option \(a): is unknown") }
                if valueFlags.contains(a) && !(a == "--json" && o.stats) {
                    guard i < arguments.count else { throw UsageError("option \(a): requires parameter") }
                    flags.append((a, arguments[i]))
                    i += 1
                } else {
                    flags.append((a, nil))
                }
            } else {
                // Bundled short flags, as in curl: -fsSL; a value-taking one takes the rest
                // of the word (-XPOST, -sm1) or else the next argument.
                var letters = Substring(a.dropFirst())
                while let c = letters.first {
                    letters = letters.dropFirst()
                    guard let name = shortFlags[c] else { throw UsageError("option -\(c): is unknown") }
                    if valueFlags.contains(name) {
                        if !letters.isEmpty {
                            flags.append((name, String(letters)))
                        } else {
                            guard i < arguments.count else { throw UsageError("option -\(c): requires parameter") }
                            flags.append((name, arguments[i]))
                            i += 1
                        }
                        break
                    }
                    flags.append((name, nil))
                }
            }
            for (name, value) in flags {
                if let why = refusal(name) { throw UsageError(why) }
                given.append(name)
                let v = value ?? ""
                switch name {
                case "--request":
                    guard !v.isEmpty else { throw UsageError("option -X: the method is empty") }
                    o.method = v
                case "--header":
                    if v.hasPrefix("@") {
                        let text = String(decoding: try readAll(String(v.dropFirst())), as: UTF8.self)
                        for line in text.split(whereSeparator: \.isNewline) where !line.isEmpty {
                            try o.addHeader(String(line))
                        }
                    } else {
                        try o.addHeader(v)
                    }
                case "--data", "--data-ascii": parts.append(.data(try dataFrom(v, strip: true)))
                case "--data-binary": parts.append(.data(try dataFrom(v, strip: false)))
                case "--data-raw": parts.append(.data(Array(v.utf8)))
                case "--data-urlencode": parts.append(.data(try urlencoded(v)))
                case "--json":
                    // After "stats" it names the format; elsewhere it carries a JSON body.
                    if let value { parts.append(.json(try dataFrom(value, strip: false))) } else { o.statsFormat = 0 }
                case "--form": form.append(try FormPart.parse(v, literal: false))
                case "--form-string": form.append(try FormPart.parse(v, literal: true))
                case "--get": get = true
                case "--upload-file": uploads.append(v)
                case "--user":
                    guard v.contains(":") else {
                        throw UsageError("option -u: give the password too (-u USER:PASSWORD): recker does not prompt for it")
                    }
                    o.generated.append((name: "Authorization", value: "Basic " + Base64.encode(Array(v.utf8))))
                case "--user-agent":
                    // -A '' sends none, as curl.
                    if v.isEmpty { o.removedHeaders.insert("user-agent") } else { o.generated.append((name: "User-Agent", value: v)) }
                case "--referer":
                    // curl's ";auto" suffix: also send a Referer on each redirect followed.
                    var referer = v
                    if referer.hasSuffix(";auto") {
                        referer.removeLast(5)
                        o.autoReferer = true
                    }
                    if !referer.isEmpty { o.generated.append((name: "Referer", value: referer)) }
                case "--cookie":
                    // As curl: with a '=' it is cookies, else a file to read them from.
                    guard v.contains("=") else {
                        o.cookieFiles.append(v)
                        break
                    }
                    // Several -b join into one Cookie header, as curl sends them (RFC 6265 5.4).
                    if let i = o.generated.firstIndex(where: { $0.name == "Cookie" }) {
                        o.generated[i].value += "; " + v
                    } else {
                        o.generated.append((name: "Cookie", value: v))
                    }
                case "--output": outputs.append(v)
                case "--remote-name": outputs.append(nil)
                case "--remote-name-all": remoteNameAll = true
                case "--globoff": globOff = true
                case "--output-dir": o.outputDir = v
                case "--dump-header": o.dumpHeader = v
                case "--include": o.include = true
                case "--head": o.headOnly = true
                case "--verbose": o.verbose = true
                case "--silent": o.silent = true
                case "--show-error": o.showError = true
                case "--fail": o.fail = true
                case "--fail-with-body": o.failWithBody = true
                case "--location": o.follow = true
                // -1: no limit, as curl's.
                case "--max-redirs": o.maxRedirects = v == "-1" ? Int.max : try number(name, v, 0 ... 1000)
                case "--compressed": o.request.compressed = true
                case "--connect-timeout": o.request.connectTimeoutMs = try milliseconds(name, v)
                case "--max-time": o.request.totalTimeoutMs = try milliseconds(name, v)
                case "--retry": o.retries = try number(name, v, 0 ... 1000)
                case "--retry-delay": o.retryDelaySeconds = try number(name, v, 0 ... 86400)
                case "--retry-max-time":
                    // 0 is no limit, as in curl.
                    let n = try number(name, v, 0 ... 86400)
                    o.retryMaxTimeSeconds = n == 0 ? nil : n
                case "--retry-connrefused": o.retryConnectionRefused = true
                case "--retry-all-errors": o.retryAllErrors = true
                case "--fail-early": o.failEarly = true
                case "--parallel", "--parallel-immediate":
                    // URLs go one after another, with the same outputs and exit code as -Z's
                    // (README, "Differences from curl").
                    break
                case "--parallel-max": _ = try number(name, v, 1 ... 300)
                case "--write-out":
                    // As curl 7.88: a format file's line ends are dropped; \n in it still works.
                    o.writeOut = v.hasPrefix("@")
                        ? String(decoding: textOfFile(try readAll(String(v.dropFirst()))), as: UTF8.self) : v
                case "--url":
                    positional.append(v)
                case "--socket": o.socket = v
                case "--unix-socket": o.direct.unixSocket = v; o.needsDirect(name)
                case "--insecure": o.direct.insecure = true
                case "--cacert": o.direct.caFile = v; o.needsDirect(name)
                case "--capath": o.direct.caPath = v; o.needsDirect(name)
                case "--resolve": o.direct.resolve.append(v); o.needsDirect(name)
                case "--connect-to": o.direct.connectTo.append(v); o.needsDirect(name)
                case "--proxy":
                    o.direct.proxy = v
                    if !v.isEmpty { o.needsDirect(name) }
                case "--noproxy": o.direct.noProxy = v
                case "--proxy-user": o.direct.proxyUser = v
                case "--http1.0": o.direct.httpVersion = .http10; o.needsDirect(name)
                case "--http1.1": o.direct.httpVersion = .http11; o.needsDirect(name)
                case "--http2": o.direct.httpVersion = .http2; o.needsDirect(name)
                case "--http2-prior-knowledge": o.direct.httpVersion = .http2PriorKnowledge; o.needsDirect(name)
                case "--cert": o.direct.cert = v; o.needsDirect(name)
                case "--key": o.direct.key = v; o.needsDirect(name)
                case "--ipv4": o.direct.ipVersion = 4; o.needsDirect(name)
                case "--ipv6": o.direct.ipVersion = 6; o.needsDirect(name)
                case "--fallback": o.fallback = true
                case "--concurrency": concurrency = v
                case "--cookie-jar": o.cookieJar = v
                case "--junk-session-cookies": o.junkSessionCookies = true
                case "--prometheus": o.statsFormat = 1
                case "--version": o.version = true
                case "--help": throw UsageError(nil)
                case "--no-progress-meter", "--no-buffer", "--disable", "--progress-bar", "--tcp-nodelay", "--no-keepalive",
                     "--styled-output", "--no-styled-output", "--ssl-reqd":
                    // No progress meter to turn on or off; the rest is what recker does anyway.
                    break
                case "--config":
                    // Its options take effect here, as if written in place of -K FILE.
                    let text = String(decoding: try readAll(v), as: UTF8.self)
                    arguments.insert(contentsOf: try CurlConfig.arguments(text), at: i)
                case "--proto": o.protocols = try Protocols.parse(v, name)
                case "--proto-redir": o.redirectProtocols = try Protocols.parse(v, name)
                case "--tlsv1", "--tlsv1.0", "--tlsv1.1", "--tlsv1.2":
                    // A floor reckerd's connections already meet (OpenSSL 3 on Debian: TLS 1.2+).
                    break
                case "--tlsv1.3": o.direct.minTLS13 = true; o.needsDirect(name)
                case "--tls-max": o.direct.tlsMax = v; o.needsDirect(name)
                case "--ciphers": o.direct.ciphers = v; o.needsDirect(name)
                case "--range": o.headers.append((name: "Range", value: "bytes=" + v))
                case "--continue-at":
                    if v == "-" {
                        o.resume = .fromFile
                    } else {
                        guard let n = Int64(v), n >= 0 else { throw UsageError("option -C: expected '-' or a byte offset, got '\(v)'") }
                        o.resume = n == 0 ? nil : .at(n)
                    }
                case "--time-cond": o.timeCondition = v
                case "--remote-time": o.remoteTime = true
                case "--remote-header-name": o.remoteHeaderName = true
                case "--create-dirs": o.createDirs = true
                case "--remove-on-error": o.removeOnError = true
                case "--netrc": o.netrc = .required(nil)
                case "--netrc-optional": if o.netrc == nil { o.netrc = .optional(nil) }
                case "--netrc-file": o.netrc = .required(v)
                case "--max-filesize":
                    // Bytes, or with curl's k, M, G suffixes.
                    let units: [Character: Int64] = ["k": 1 << 10, "K": 1 << 10, "m": 1 << 20, "M": 1 << 20, "g": 1 << 30, "G": 1 << 30]
                    let scale = v.last.flatMap { units[$0] } ?? 1
                    guard let n = Int64(scale == 1 ? v : String(v.dropLast())), n >= 0, n <= Int64.max / scale else {
                        throw UsageError("option --max-filesize: expected a number of bytes (k, M, G allowed), got '\(v)'")
                    }
                    o.maxFileSize = n * scale
                case "--post301": o.keepPost.insert(301)
                case "--post302": o.keepPost.insert(302)
                case "--post303": o.keepPost.insert(303)
                case "--location-trusted":
                    o.follow = true
                    o.locationTrusted = true
                case "--no-silent": o.silent = false
                case "--proto-default": o.defaultScheme = v.lowercased()
                default: throw UsageError("option \(name): is unknown")
                }
            }
        }
        let custom = Set(o.headers.map { $0.name.lowercased() })
        o.headers = o.generated.filter { !custom.contains($0.name.lowercased()) && !o.removedHeaders.contains($0.name.lowercased()) } + o.headers
        if o.version { return o }

        if positional.first == "stats" {
            positional.removeFirst()
            try o.only(given, ["--json", "--prometheus", "--socket", "--silent", "--show-error"], "stats")
            guard positional.isEmpty else { throw UsageError("stats takes no URL (got \(positional[0]))") }
            return o
        }
        o.stats = false
        if positional.first == "batch" {
            positional.removeFirst()
            o.batch = true
            try o.only(given, ["--header", "--fail", "--concurrency", "--output-dir", "--max-time", "--connect-timeout",
                               "--location", "--max-redirs", "--compressed", "--silent", "--show-error", "--socket",
                               "--fallback", "--user", "--user-agent", "--referer", "--cookie"], "batch")
            if let c = concurrency {
                o.concurrency = try number("-c", c, 1 ... 100_000)
            }
            if !o.cookieFiles.isEmpty || o.cookieJar != nil {
                throw UsageError("batch keeps no cookies: give them with -b 'NAME=VALUE' (-c N is batch's concurrency)")
            }
            guard positional.count <= 1 else { throw UsageError("batch reads one input (got \(positional.joined(separator: " ")))") }
            o.url = positional.first
            if o.follow { o.request.followRedirects = UInt8(min(o.maxRedirects, 255)) }
            return o
        }
        // Outside batch, -c names the cookie jar, as in curl.
        if let c = concurrency { o.cookieJar = c }
        guard !positional.isEmpty else { throw UsageError("no URL given") }

        // One way to send a body, as curl insists.
        let bodies = [!parts.isEmpty && !get ? "-d" : nil, form.isEmpty ? nil : "-F", uploads.isEmpty ? nil : "-T",
                      o.headOnly ? "-I" : nil].compactMap { $0 }
        if bodies.count > 1 {
            throw UsageError("you can only select one HTTP request method: \(bodies.joined(separator: " and ")) both ask for one")
        }
        var query: String?
        if !parts.isEmpty {
            var data: [UInt8] = []
            var previousWasJSON = false
            for (n, p) in parts.enumerated() {
                // -d pieces are joined with '&'; --json pieces are simply concatenated.
                if n > 0 && !(p.isJSON && previousWasJSON) { data.append(UInt8(ascii: "&")) }
                data += p.bytes
                previousWasJSON = p.isJSON
            }
            if get {
                query = String(decoding: data, as: UTF8.self)
            } else {
                o.body = data
                if parts.contains(where: \.isJSON) {
                    o.automaticContentType = "application/json"
                    if !o.has("accept") { o.headers.append((name: "Accept", value: "application/json")) }
                } else {
                    o.automaticContentType = "application/x-www-form-urlencoded"
                }
            }
        }
        if !form.isEmpty {
            let boundary = Multipart.newBoundary()
            o.body = try Multipart.body(form, boundary: boundary)
            o.automaticContentType = "multipart/form-data; boundary=\(boundary)"
            // As curl: a multipart Content-Type given with -H gets the boundary the body uses.
            if let i = o.headers.firstIndex(where: { $0.name.lowercased() == "content-type" }),
               o.headers[i].value.lowercased().hasPrefix("multipart/"), !o.headers[i].value.lowercased().contains("boundary=") {
                o.headers[i].value += "; boundary=\(boundary)"
            }
        }
        if o.has("content-type") { o.automaticContentType = nil }

        for (n, argument) in positional.enumerated() {
            // The Nth -o or -O goes with the Nth URL; --remote-name-all gives the rest -O.
            let paired: String?? = n < outputs.count ? outputs[n] : remoteNameAll ? .some(nil) : .none
            let expanded = globOff ? [URLGlob.Expanded(url: argument, values: [])] : try URLGlob.expand(argument)
            for e in expanded {
                var url = URLText.withScheme(e.url, default: o.defaultScheme)
                if let query { url = URLText.appendingQuery(url, query) }
                let upload = n < uploads.count ? uploads[n] : nil
                if let file = upload, url.hasSuffix("/") && file != "-" {
                    let name = file.split(separator: "/").last.map(String.init) ?? file
                    url += URLText.percentEncoded(name)
                }
                var output: String?
                switch paired {
                case .some(.some(let template)): output = URLGlob.outputName(template, e.values)
                case .some(.none):
                    guard let name = URLText.remoteName(url) else {
                        throw UsageError("-O: the URL has no file name to save under (\(url)): use -o FILE", exitCode: 23)
                    }
                    output = name
                case .none: output = nil
                }
                // As curl: --output-dir goes before every -o name, an absolute one too.
                if let dir = o.outputDir, let out = output, out != "-" {
                    output = dir.hasSuffix("/") ? dir + out : dir + "/" + out
                }
                var target = Target(url: url, given: e.url, output: output, upload: upload)
                if case .some(.none) = paired { target.remoteName = true }
                o.targets.append(target)
            }
        }
        // As curl: credentials in a URL become Basic authorization (unless -u gave some),
        // never part of the URL reckerd sees.
        for k in o.targets.indices {
            guard let parts = URLText.parse(o.targets[k].url), let userinfo = parts.userinfo else { continue }
            o.targets[k].url = parts.scheme + "://" + parts.authority + parts.target
            if !o.headers.contains(where: { $0.name.lowercased() == "authorization" }) {
                let decoded = URLText.percentDecoded(userinfo)
                o.targets[k].authorization = "Basic " + Base64.encode(Array((decoded.contains(":") ? decoded : decoded + ":").utf8))
            }
        }
        // As curl, a URL that cannot be a URL is refused (exit 3) before any file is read.
        for target in o.targets {
            do { _ = try RequestValidator.parse(url: target.url) } catch {
                throw UsageError("URL using bad/illegal format or missing URL (\(error.message)): \(target.given)", exitCode: 3)
            }
        }
        // -T files are read as they are sent; one that cannot be opened fails now (exit 26).
        for file in Set(o.targets.compactMap(\.upload)) where file != "-" { _ = try BodySource(file: file) }
        // As curl, a proxy named in the environment (http_proxy, HTTPS_PROXY, ALL_PROXY, with
        // NO_PROXY) is used: recker-direct goes through it, never around it.
        if o.direct.proxy == nil, let (variable, proxy) = Self.environmentProxy(for: o.targets, noProxy: o.direct.noProxy) {
            o.direct.proxy = proxy
            o.needsDirect("the \(variable) environment variable")
        }
        // -k changes nothing for http:// (as curl); on https:// the pool keeps such requests on
        // connections of their own (PROTOCOL.md 2.3, insecure).
        if o.direct.insecure { o.request.insecure = true }
        o.posts = o.body != nil
        let bodyLengths = uploads.isEmpty ? [o.body.map { UInt64($0.count) } ?? 0]
            : try o.targets.compactMap(\.upload).map { file throws(UsageError) in try BodySource(file: file).length ?? UInt64.max }
        if let given = o.givenContentLength, let differs = bodyLengths.first(where: { String($0) != given.trimming(" \t") }) {
            throw UsageError("option -H Content-Length: \(given) disagrees with the body's \(differs == UInt64.max ? "unknown length" : "\(differs) bytes"): reckerd sends a body's own length, so a request whose length is not its body's cannot be sent (drop the header)")
        }
        o.namedMethod = o.method
        // As curl: a method named with -X stays across 301/302/303.
        o.request.keepMethod = given.contains("--request") ? true : nil
        o.select(o.targets[0])
        return o
    }

    /// The proxy curl would take from the environment for any of `targets`: `http_proxy` (in
    /// lower case only, as curl) for http, `https_proxy`/`HTTPS_PROXY` for https, else
    /// `all_proxy`/`ALL_PROXY`; none for a host `NO_PROXY` (or --noproxy) lists.
    static func environmentProxy(for targets: [Target], noProxy given: String?) -> (String, String)? {
        func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } }
        let exempt = (given ?? env("no_proxy") ?? env("NO_PROXY") ?? "").split(separator: ",").map { String($0).trimming(" ").lowercased() }
        for t in targets {
            guard let parts = URLText.parse(t.url) else { continue }
            let host = parts.host.lowercased().trimming("[]")
            if exempt.contains(where: { e in
                let e = e.hasPrefix(".") ? String(e.dropFirst()) : e
                return e == "*" || host == e || host.hasSuffix("." + e)
            }) { continue }
            let names = parts.scheme == "https" ? ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] : ["http_proxy", "all_proxy", "ALL_PROXY"]
            for name in names { if let value = env(name) { return (name, value) } }
        }
        return nil
    }

    /// Notes that `flag` makes this call one the pool cannot serve (the first one named).
    mutating func needsDirect(_ flag: String) {
        if directReason == nil { directReason = flag }
    }

    /// Makes `target` the one fetched next.
    mutating func select(_ target: Target) {
        url = target.url
        givenURL = target.given
        output = target.output
        uploadFile = target.upload
        urlAuthorization = target.authorization
        outputIsRemoteName = target.remoteName
        method = namedMethod ?? (headOnly ? "HEAD" : target.upload != nil ? "PUT" : body != nil ? "POST" : "GET")
    }

    /// The selected URL's body, opened to be sent.
    func bodySource() throws(UsageError) -> BodySource? {
        if let file = uploadFile { return try BodySource(file: file) }
        return body.map { BodySource(bytes: $0) }
    }

    /// Adds one -H argument: "Name: value", "Name:" (send none), "Name;" (send it empty).
    mutating func addHeader(_ h: String) throws(UsageError) {
        if let colon = h.firstIndex(of: ":") {
            let name = String(h[..<colon])
            guard !name.isEmpty else { throw UsageError("header '\(h)' has no name") }
            let v = String(h[h.index(after: colon)...].drop { $0 == " " || $0 == "\t" })
            if v.isEmpty && ["host", "accept", "accept-encoding"].contains(name.lowercased()) {
                throw UsageError("header '\(h)': reckerd's engine always sends \(name); give it another value instead")
            }
            let lower = name.lowercased()
            if v.isEmpty {
                // As curl: no header of the tool's own by that name; a -H of it still goes.
                removedHeaders.insert(lower)
            } else if Self.connectionHeaders.contains(lower) {
                // Hop-by-hop (RFC 9110 §7.6.1), as browsers' "Copy as cURL" carries them: the
                // connection's own business, left to it as any proxy does.
                return
            } else if lower == "content-length" {
                givenContentLength = v
            } else {
                headers.append((name: name, value: v))
            }
        } else if h.hasSuffix(";") && h.count > 1 {
            headers.append((name: String(h.dropLast()), value: ""))
        } else {
            throw UsageError("header '\(h)' has no colon (write 'Name: value', 'Name:' to send none, 'Name;' to send it empty)")
        }
    }

    /// Headers about the connection, not the request: taken and left to reckerd's connection.
    static let connectionHeaders: Set<String> = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade",
                                                 "expect", "transfer-encoding"]

    /// The Referer sent, for %{referer}.
    var referer: String? { headers.last { $0.name.lowercased() == "referer" }?.value }

    /// Whether the command line names a header (lower-case name), to send or to leave out.
    func has(_ lowerName: String) -> Bool {
        removedHeaders.contains(lowerName) || headers.contains { $0.name.lowercased() == lowerName }
    }

    /// Refuses flags that mean nothing in `mode`: none is silently ignored.
    func only(_ given: [String], _ allowed: Set<String>, _ mode: String) throws(UsageError) {
        if let bad = given.first(where: { !allowed.contains($0) }) {
            throw UsageError("option \(bad) does not apply to '\(mode)'")
        }
    }

    /// The bytes of a -d argument: literal, or @FILE / @- read whole.
    private static func dataFrom(_ arg: String, strip: Bool) throws(UsageError) -> [UInt8] {
        guard arg.hasPrefix("@") else { return Array(arg.utf8) }
        let out = try readAll(String(arg.dropFirst()))
        return strip ? textOfFile(out) : out
    }

    /// A --data-urlencode argument: content, =content, name=content, @file, name@file.
    private static func urlencoded(_ arg: String) throws(UsageError) -> [UInt8] {
        if let eq = arg.firstIndex(of: "="), !arg[..<eq].contains("@") {
            let name = String(arg[..<eq])
            let content = URLText.formEncoded(String(arg[arg.index(after: eq)...]))
            return Array((name.isEmpty ? content : name + "=" + content).utf8)
        }
        if let at = arg.firstIndex(of: "@") {
            let name = String(arg[..<at])
            let content = URLText.percentEncoded(bytes: try readAll(String(arg[arg.index(after: at)...])), form: true)
            return Array((name.isEmpty ? content : name + "=" + content).utf8)
        }
        return Array(URLText.formEncoded(arg).utf8)
    }

    private static func number(_ flag: String, _ text: String, _ range: ClosedRange<Int>) throws(UsageError) -> Int {
        guard let n = Int(text), range.contains(n) else {
            throw UsageError("option \(flag): expected a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
        }
        return n
    }

    /// Seconds (fractions allowed) as milliseconds; 0 is no limit, as in curl.
    private static func milliseconds(_ flag: String, _ text: String) throws(UsageError) -> UInt32? {
        guard let s = Double(text), s.isFinite, s >= 0, s < 4_000_000 else {
            throw UsageError("option \(flag): expected seconds from 0 to 3999999, got '\(text)'")
        }
        // Any time above 0 is at least a millisecond: -m 0.0001 must not mean "no limit".
        return s == 0 ? nil : max(1, UInt32(s * 1000))
    }
}

/// One -d, --data-*, or --json argument's bytes.
enum DataPart {
    case data([UInt8])
    case json([UInt8])

    var bytes: [UInt8] {
        switch self {
        case .data(let b), .json(let b): b
        }
    }

    var isJSON: Bool { if case .json = self { true } else { false } }
}

/// A file read as curl 7.88 reads `-d @FILE` and `-w @FILE` (its file2string): in pieces of
/// at most 255 bytes or one line, each cut at its first CR, LF or NUL.
func textOfFile(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var i = 0
    while i < bytes.count {
        var end = i
        while end < bytes.count && end - i < 255 {
            end += 1
            if bytes[end - 1] == 0x0A { break }
        }
        let piece = bytes[i ..< end]
        out += piece.prefix { $0 != 0x0D && $0 != 0x0A && $0 != 0 }
        i = end
    }
    return out
}

/// A whole file, or standard input for "-".
func readAll(_ path: String) throws(UsageError) -> [UInt8] {
    guard !path.isEmpty else { throw UsageError("no file named after @", exitCode: 26) }
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
        guard out.count <= maxInMemory else {
            // As curl's "out of memory" for -d: its data is built whole before it is sent.
            throw UsageError("\(path) is larger than the \(maxInMemory >> 20) MiB recker holds in memory for -d, --data-binary, --json, -F or -H @; send a large file with -T, which streams it", exitCode: 2)
        }
    }
    return out
}

/// The most bytes `readAll` holds (a -d @/dev/zero must fail, not exhaust the machine).
let maxInMemory = 1 << 30

/// A command-line mistake; nil message means "print the usage".
struct UsageError: Error {
    var message: String?
    var exitCode: Int32
    init(_ message: String?, exitCode: Int32 = 2) {
        self.message = message
        self.exitCode = exitCode
    }
}
