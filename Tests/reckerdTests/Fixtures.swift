import Foundation
import ReckerTestSupport

/// Files every nginx in these tests serves, with sizes the body tests need.
enum Fixtures {
    static func bytes(_ n: Int, seed: UInt64) -> Data {
        var state = seed
        var bytes = [UInt8](repeating: 0, count: n)
        for i in 0 ..< n {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        return Data(bytes)
    }

    static let files: [String: Data] = {
        var f: [String: Data] = [
            "hello.txt": Data("hello from nginx\n".utf8),
            "size/0": Data(),
            "size/1": Data("x".utf8),
            "size/65536": bytes(65536, seed: 1),
            "size/8388608": bytes(8 << 20, seed: 2),
            "slow/big": bytes(16 << 20, seed: 3),
        ]
        for i in 0 ..< 50 { f["n/\(i).txt"] = Data("item \(i)\n".utf8) }
        return f
    }()

    /// The daemon's config for talking to a test nginx (trusts its CA; verification on).
    static func config(_ nginx: Nginx, extra: String = "") -> String {
        #"{ "logLevel": "debug", "tls": { "caFile": "\#(nginx.caFile)" }\#(extra.isEmpty ? "" : ", " + extra) }"#
    }
}
