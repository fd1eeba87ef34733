import CReckerCurl

/// The libcurl this process runs on, and whether reckerd may run on it (docs/LIBCURL.md).
package enum Libcurl {
    /// The oldest libcurl reckerd's suite passes on. Older ones are refused at start: Debian
    /// 12's 7.88.1 (-10+deb12u15) crashes on an obs-folded response header after an earlier
    /// transfer (curl issue 11620, in header unfolding), and the engine relies on 8.x:
    /// CURLINFO_CONN_ID (8.2), CURLE_TOO_LARGE (8.6), and a cached connection with input
    /// pending never reused.
    package static let minimum = (major: 8, minor: 14, patch: 0)

    /// The running libcurl's version, e.g. "8.14.1".
    package static var version: String {
        guard let info = curl_version_info(CURLVERSION_ELEVENTH), let v = info.pointee.version else { return "unknown" }
        return String(cString: v)
    }

    /// The running libcurl's version as 0xMMmmpp.
    package static var versionNumber: Int {
        guard let info = curl_version_info(CURLVERSION_ELEVENTH) else { return 0 }
        return Int(info.pointee.version_num)
    }

    /// Why reckerd must not start on this libcurl, naming the version and what to install;
    /// nil when it may.
    package static var refusal: String? { refusal(versionNumber: versionNumber, version: version) }

    /// Why reckerd must not start on the libcurl `version` (`versionNumber` as 0xMMmmpp).
    package static func refusal(versionNumber: Int, version: String) -> String? {
        let (major, minor, patch) = minimum
        guard versionNumber < (major << 16 | minor << 8 | patch) else { return nil }
        return "libcurl \(version) is too old: reckerd needs libcurl \(major).\(minor).\(patch) or later "
            + "(7.88 crashes on an obs-folded upstream header, curl issue 11620). Build reckerd with "
            + "`make`, which links libcurl \(major).\(minor) from bookworm-backports into the binary, "
            + "or install libcurl4 \(major).\(minor) (Debian 13, or bookworm-backports on Debian 12)"
    }
}
