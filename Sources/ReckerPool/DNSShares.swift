import CReckerCurl

/// libcurl's DNS cache, one per domain. libcurl 7.88 walks its whole DNS cache on every
/// request, so a single cache for every domain made each request cost as much as the names
/// seen within `limits.dnsCacheTimeout`: after 10,000 domains (any local user can name
/// them), 24k requests/s fell to 2.5k. With a cache per domain, a request walks only its
/// own domain's entries (kept on 8.14, where it costs nothing; bench W8 measures it).
/// Engine-thread only.
final class DNSShares {
    private struct Share {
        let raw: UnsafeMutableRawPointer
        var users = 0
        var lastUsed: UInt64
    }

    private var shares: [String: Share] = [:]

    /// Gives `easy` the DNS cache of `domain`, made on first use.
    func attach(_ easy: EasyHandle, domain: String, now: UInt64) {
        if shares[domain] == nil {
            guard let raw = curl_share_init() else { return }
            guard recker_share_dns(raw) == CURLSHE_OK else {
                curl_share_cleanup(raw)
                return
            }
            shares[domain] = Share(raw: raw, lastUsed: now)
        }
        guard easy.set(CURLOPT_SHARE, pointer: shares[domain]!.raw) == CURLE_OK else { return }
        shares[domain]!.users += 1
        shares[domain]!.lastUsed = now
    }

    /// Takes `easy` off `domain`'s cache (before it is reset, reused or freed).
    func detach(_ easy: EasyHandle, domain: String) {
        guard shares[domain] != nil, shares[domain]!.users > 0 else { return }
        easy.set(CURLOPT_SHARE, pointer: nil)
        shares[domain]!.users -= 1
    }

    /// Frees the caches no transfer uses that have not been used since `cutoff`: their
    /// entries have expired (`dnsCacheTimeout`) anyway.
    func sweep(unusedSince cutoff: UInt64) {
        for (domain, s) in shares where s.users == 0 && s.lastUsed < cutoff {
            if curl_share_cleanup(s.raw) == CURLSHE_OK { shares[domain] = nil }
        }
    }

    /// Frees every cache (the engine stops; no easy handle is left).
    func cleanupAll() {
        for s in shares.values { curl_share_cleanup(s.raw) }
        shares = [:]
    }
}
