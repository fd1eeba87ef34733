import CReckerCurl
import ReckerProtocol

extension CurlEngine {
    /// Sets every option of an easy handle that is new or reset (`recycle`), so no cookie,
    /// credential or other per-request state passes from one client to another.
    func configure(_ t: Transfer) {
        let e = t.easy
        let head = t.request.head
        let agent = options.agent(forDomain: t.request.target.domain, host: t.request.target.host)
        let me = Unmanaged.passUnretained(t).toOpaque()
        e.set(CURLOPT_URL, head.url)
        e.set(CURLOPT_NOSIGNAL, 1)
        e.set(CURLOPT_PRIVATE, pointer: me)
        e.set(CURLOPT_ERRORBUFFER, pointer: t.errorBuffer.baseAddress)
        e.set(CURLOPT_TCP_KEEPALIVE, 1)
        // Names resolved (IP literals included) are kept this long, so their memory is
        // bounded by the names seen within it.
        e.set(CURLOPT_DNS_CACHE_TIMEOUT, options.dnsCacheTimeoutS)
        e.set(CURLOPT_BUFFERSIZE, 64 * 1024)
        // reckerd closes idle connections itself, on time (PoolStateMachine); libcurl's own
        // idle limit only counts whole seconds, so it is set past ours as a backstop.
        e.set(CURLOPT_MAXAGE_CONN, agent.keepAliveTimeoutMs / 1000 + 2)
        // A connection past its lifetime takes no new request; the one it carries finishes.
        e.set(CURLOPT_MAXLIFETIME_CONN, agent.maxLifetimeS)
        if !agent.keepAlive { e.set(CURLOPT_FORBID_REUSE, 1) }
        if let ca = options.caFile {
            e.set(CURLOPT_CAINFO, ca)
            // No CA directory besides the bundle (Debian's libcurl adds /etc/ssl/certs): with
            // one, libcurl parses the bundle for every connection instead of once for all
            // (about 800 KiB per connection with the system's 139 CAs).
            e.set(CURLOPT_CAPATH, pointer: nil)
        }
        if options.http2Enabled {
            // No CURLOPT_PIPEWAIT: the pool itself holds requests while an HTTP/2 connection
            // is being opened (PoolStateMachine.capacity). libcurl's wait made the connects of
            // an https domain known to be HTTP/1.1 one at a time (each request waited for the
            // one before to connect or time out: 10 x connectTimeout for the tenth).
            e.set(CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        } else {
            e.set(CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1))
        }
        let own = options.processOnly
        if own != ProcessOnlyOptions() { configureProcessOnly(e, own) }
        // 0 means the configured value, as no option does (PROTOCOL.md 2.3).
        let connectTimeout = head.options.connectTimeoutMs.flatMap { $0 == 0 ? nil : Int($0) } ?? agent.connectTimeoutMs
        e.set(CURLOPT_CONNECTTIMEOUT_MS, connectTimeout)
        // http and https only, for the request and for every redirect hop (libcurl would
        // follow a Location to ftp:// and more).
        // "" disables the environment's proxy variables: only the config names a proxy.
        e.set(CURLOPT_PROXY, options.upstreamProxy ?? "")
        if let noProxy = options.noProxy { e.set(CURLOPT_NOPROXY, noProxy) }
        e.set(CURLOPT_PROTOCOLS_STR, "http,https")
        e.set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        // What is left of total_timeout after the queue; the engine's own timer is exact,
        // libcurl's is the backstop, a little later so that the engine's fires first and the
        // request fails with TIMEOUT whatever libcurl was doing (CONNECT_TIMEOUT came back
        // for a 1 ms total_timeout that ran out while libcurl connected).
        if let total = head.options.totalTimeoutMs, total > 0 {
            let waited = elapsed(since: t.request.arrival)
            e.set(CURLOPT_TIMEOUT_MS, max(1, Int(total) - Int(waited / 1_000_000)) + Self.backstopSlackMs)
        }
        if let n = head.options.followRedirects, n > 0 {
            e.set(CURLOPT_FOLLOWLOCATION, 1)
            e.set(CURLOPT_MAXREDIRS, Int(n))
        }
        if head.options.compressed == true { e.set(CURLOPT_ACCEPT_ENCODING, "") }
        if head.options.insecure == true {
            // libcurl keys connection reuse on these: such a connection never carries a
            // request that verifies (PROTOCOL.md 2.3, insecure).
            e.set(CURLOPT_SSL_VERIFYPEER, 0)
            e.set(CURLOPT_SSL_VERIFYHOST, 0)
        }
        // A warm-up exists to open a connection: over HTTP/2 it would otherwise ride on one.
        // A request started over after a dead or desynchronised reused connection, too.
        if t.isWarmUp || t.freshConnection { e.set(CURLOPT_FRESH_CONNECT, 1) }

        recker_easy_setopt_data_callback(e.raw, CURLOPT_WRITEFUNCTION) { ptr, size, n, ud in
            let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
            return t.onBody(UnsafeBufferPointer(start: UnsafeRawPointer(ptr!).assumingMemoryBound(to: UInt8.self), count: size * n))
        }
        e.set(CURLOPT_WRITEDATA, pointer: me)
        recker_easy_setopt_data_callback(e.raw, CURLOPT_HEADERFUNCTION) { ptr, size, n, ud in
            let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
            return t.onHeader(UnsafeBufferPointer(start: UnsafeRawPointer(ptr!).assumingMemoryBound(to: UInt8.self), count: size * n))
                ? size * n : 0
        }
        e.set(CURLOPT_HEADERDATA, pointer: me)
        installSocketCallbacks(t)

        var list: UnsafeMutablePointer<curl_slist>? = nil
        // An empty or all-whitespace value goes out empty ("Name;" is libcurl's way): "Name: "
        // would tell libcurl to drop the header, and with it the default of its own.
        for h in head.headers {
            let blank = h.value.utf8.allSatisfy { $0 == 0x20 || $0 == 0x09 }
            list = curl_slist_append(list, blank ? "\(h.name);" : "\(h.name): \(h.value)")
        }
        // Never wait on 100-continue: the body goes out at once.
        list = curl_slist_append(list, "Expect:")

        let method = head.method
        // A POST is libcurl's POST, which on 301/302/303 becomes a GET without the body
        // (RFC 9110 §15.4, as curl does); keep_method keeps the method and the body on all
        // three (CURLOPT_POSTREDIR; as a custom method, libcurl dropped the body on a 303).
        let plainPost = method == "POST"
        if plainPost && head.options.keepMethod == true {
            e.set(CURLOPT_POSTREDIR, Int(CURL_REDIR_POST_301 | CURL_REDIR_POST_302 | CURL_REDIR_POST_303))
        }
        if plainPost && !head.headers.contains(where: { $0.name.lowercased() == "content-type" }) {
            // libcurl would add a form Content-Type the client never asked for.
            list = curl_slist_append(list, "Content-Type:")
        }
        if t.request.hasBody {
            // The door refuses a body_length above Int64.max; unknown is -1 (chunked).
            let length = head.bodyLength.flatMap { Int64(exactly: $0) } ?? -1
            if plainPost {
                e.set(CURLOPT_POST, 1)
                e.set(CURLOPT_POSTFIELDSIZE_LARGE, offset: length)
            } else {
                e.set(CURLOPT_UPLOAD, 1)
                e.set(CURLOPT_INFILESIZE_LARGE, offset: length)
                e.set(CURLOPT_CUSTOMREQUEST, method)
            }
            recker_easy_setopt_data_callback(e.raw, CURLOPT_READFUNCTION) { ptr, size, n, ud in
                let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
                return t.onRead(UnsafeMutableBufferPointer(start: UnsafeMutableRawPointer(ptr!).assumingMemoryBound(to: UInt8.self), count: size * n))
            }
            e.set(CURLOPT_READDATA, pointer: me)
            recker_easy_setopt_seek(e.raw) { ud, offset, origin in
                Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue().onSeek(offset: Int64(offset), origin: origin)
            }
            e.set(CURLOPT_SEEKDATA, pointer: me)
        } else if method == "GET" {
            e.set(CURLOPT_HTTPGET, 1)
        } else if method == "HEAD" {
            e.set(CURLOPT_NOBODY, 1)
        } else if plainPost && head.bodyLength == 0 {
            e.set(CURLOPT_POST, 1)
            e.set(CURLOPT_POSTFIELDSIZE_LARGE, offset: 0)
        } else {
            // PROTOCOL.md 2.3: an unknown length without a body sends no Content-Length.
            e.set(CURLOPT_CUSTOMREQUEST, method)
            if ["PUT", "PATCH"].contains(method) && head.bodyLength == 0 { list = curl_slist_append(list, "Content-Length: 0") }
        }
        t.headerList = list
        recker_easy_setopt_slist(e.raw, CURLOPT_HTTPHEADER, list)
    }
}

extension CurlEngine {
    /// recker-direct's own connection settings (never the daemon's: see ProcessOnlyOptions).
    /// libcurl keys connection reuse on each of them, so none leaks into another request.
    func configureProcessOnly(_ e: EasyHandle, _ own: ProcessOnlyOptions) {
        if let path = own.unixSocketPath { e.set(CURLOPT_UNIX_SOCKET_PATH, path) }
        if own.insecure {
            e.set(CURLOPT_SSL_VERIFYPEER, 0)
            e.set(CURLOPT_SSL_VERIFYHOST, 0)
        }
        if let path = own.caPath { e.set(CURLOPT_CAPATH, path) }
        if !own.resolve.isEmpty { recker_easy_setopt_slist(e.raw, CURLOPT_RESOLVE, processSlist(own.resolve)) }
        if !own.connectTo.isEmpty { recker_easy_setopt_slist(e.raw, CURLOPT_CONNECT_TO, processSlist(own.connectTo)) }
        if let user = own.proxyUser { e.set(CURLOPT_PROXYUSERPWD, user) }
        if let v = own.httpVersion { e.set(CURLOPT_HTTP_VERSION, v) }
        if let cert = own.clientCert {
            // curl's -E FILE:PASSWORD.
            if let colon = cert.lastIndex(of: ":"), !cert.hasPrefix("pkcs11:") {
                e.set(CURLOPT_SSLCERT, String(cert[..<colon]))
                e.set(CURLOPT_KEYPASSWD, String(cert[cert.index(after: colon)...]))
            } else {
                e.set(CURLOPT_SSLCERT, cert)
            }
        }
        if let key = own.clientKey { e.set(CURLOPT_SSLKEY, key) }
        if let v = own.ipResolve { e.set(CURLOPT_IPRESOLVE, v) }
        if let v = own.sslVersion { e.set(CURLOPT_SSLVERSION, v) }
        if let list = own.ciphers { e.set(CURLOPT_SSL_CIPHER_LIST, list) }
    }

    /// A string list kept for the engine's life (recker-direct's process).
    private func processSlist(_ items: [String]) -> UnsafeMutablePointer<curl_slist>? {
        var list: UnsafeMutablePointer<curl_slist>?
        for item in items { list = curl_slist_append(list, item) }
        processLists.append(list)
        return list
    }
}
