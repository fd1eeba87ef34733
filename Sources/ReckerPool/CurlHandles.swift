import CReckerCurl

/// A libcurl easy handle. `CURL` and `CURLM` import as the same raw pointer; these two
/// types keep them apart.
struct EasyHandle {
    let raw: UnsafeMutableRawPointer

    init?() {
        guard let h = curl_easy_init() else { return nil }
        raw = h
    }

    @discardableResult
    func set(_ option: CURLoption, _ value: Int) -> CURLcode { recker_easy_setopt_long(raw, option, value) }
    @discardableResult
    func set(_ option: CURLoption, offset value: Int64) -> CURLcode { recker_easy_setopt_off(raw, option, curl_off_t(value)) }
    /// libcurl copies string options, so the Swift string may go away after the call.
    @discardableResult
    func set(_ option: CURLoption, _ value: String) -> CURLcode { recker_easy_setopt_string(raw, option, value) }
    @discardableResult
    func set(_ option: CURLoption, pointer: UnsafeMutableRawPointer?) -> CURLcode { recker_easy_setopt_pointer(raw, option, pointer) }

    func long(_ info: CURLINFO) -> Int {
        var v = 0
        _ = recker_easy_getinfo_long(raw, info, &v)
        return v
    }

    func offset(_ info: CURLINFO) -> Int64 {
        var v: curl_off_t = 0
        _ = recker_easy_getinfo_off(raw, info, &v)
        return Int64(v)
    }

    /// A string the handle reports, such as the URL of the hop being fetched.
    func string(_ info: CURLINFO) -> String? {
        var v: UnsafePointer<CChar>?
        guard recker_easy_getinfo_string(raw, info, &v) == CURLE_OK, let v else { return nil }
        return String(cString: v)
    }

    func cleanup() { curl_easy_cleanup(raw) }
}

/// A libcurl multi handle: the connection cache all transfers share. Only the engine
/// thread uses it, except `curl_multi_wakeup`, which libcurl allows from any thread.
struct MultiHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer

    init?() {
        guard let m = curl_multi_init() else { return nil }
        raw = m
    }

    @discardableResult
    func set(_ option: CURLMoption, _ value: Int) -> CURLMcode { recker_multi_setopt_long(raw, option, value) }
}
