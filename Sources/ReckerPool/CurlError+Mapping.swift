import CReckerCurl
import ReckerProtocol

extension ReckerError {
    /// The wire error for a failed transfer; the CURLcode rides along as detail.
    static func upstream(_ code: CURLcode, method: String, connected: Bool, message: String) -> ReckerError {
        let wire: ReckerError.Code
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST: wire = .dnsFailed
        case CURLE_COULDNT_CONNECT: wire = .connectFailed
        case CURLE_OPERATION_TIMEDOUT: wire = connected ? .timeout : .connectTimeout
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
             CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ENGINE_INITFAILED:
            wire = .tlsFailed
        case CURLE_SEND_ERROR: wire = .upstreamSendFailed
        case CURLE_RECV_ERROR, CURLE_PARTIAL_FILE: wire = .upstreamRecvFailed
        // CURLE_TOO_LARGE (libcurl 8.6+): a field of the upstream's answer past libcurl's limits.
        case CURLE_GOT_NOTHING, CURLE_WEIRD_SERVER_REPLY, CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_BAD_CONTENT_ENCODING, CURLE_TOO_LARGE:
            wire = .upstreamProtocol
        case CURLE_TOO_MANY_REDIRECTS: wire = .tooManyRedirects
        // A URL libcurl cannot use that the door let through ("http://[zz]/"): nothing was sent.
        case CURLE_URL_MALFORMAT: wire = .invalidURL
        case CURLE_ABORTED_BY_CALLBACK, CURLE_WRITE_ERROR: wire = .cancelled
        default: wire = .upstreamFailed
        }
        var message = message
        switch code {
        case CURLE_PEER_FAILED_VERIFICATION where message.contains("subject name") || message.contains("does not match"):
            message += " (the upstream's certificate does not name this host: use a host name the certificate lists)"
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_ISSUER_ERROR:
            message += " (the upstream's certificate is not trusted: to trust a private CA, add it to reckerd's config as tls.extraCaFile, or replace the system bundle with tls.caFile; recker --fallback reads CURL_CA_BUNDLE)"
        case CURLE_SSL_CACERT_BADFILE:
            message += " (the CA bundle in reckerd's tls.caFile or tls.extraCaFile cannot be used)"
        default: break
        }
        let reached = ![.dnsFailed, .connectFailed, .connectTimeout, .tlsFailed, .invalidURL].contains(wire)
        let safe = !reached || RequestValidator.isSafeMethod(method)
        return ReckerError(wire, message, detail: code.rawValue, mayHaveReachedUpstream: reached, retrySafe: safe)
    }
}
