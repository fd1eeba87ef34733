import Glibc

/// A TCP address on loopback to listen on ("127.0.0.1:8118", "[::1]:9464"): the only kind
/// the HTTP front and the metrics listener accept, since a TCP peer's user is not known and
/// anyone who can reach the port can use it.
struct LoopbackAddress: Equatable, CustomStringConvertible {
    /// "127.0.0.1" or "::1" (any 127.x.y.z).
    var host: String
    var port: UInt16
    var ipv6: Bool

    var description: String { ipv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Why `text` is refused, or the address. Host names are refused too: "localhost" may
    /// resolve elsewhere.
    static func parse(_ text: String) -> Result<LoopbackAddress, LoopbackAddressError> {
        let bytes = Array(text.utf8)
        var host: String
        var portText: ArraySlice<UInt8>
        var v6 = false
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), close + 1 < bytes.count,
                  bytes[close + 1] == UInt8(ascii: ":") else {
                return .failure(.init("must be \"[::1]:PORT\" for IPv6"))
            }
            host = String(decoding: bytes[1 ..< close], as: UTF8.self)
            portText = bytes[(close + 2)...]
            v6 = true
        } else {
            guard let colon = bytes.lastIndex(of: UInt8(ascii: ":")) else {
                return .failure(.init("must be HOST:PORT, such as 127.0.0.1:8118"))
            }
            host = String(decoding: bytes[..<colon], as: UTF8.self)
            portText = bytes[(colon + 1)...]
        }
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let port = UInt16(exactly: Int(String(decoding: portText, as: UTF8.self)) ?? 0), port > 0 else {
            return .failure(.init("has no valid port (1-65535)"))
        }
        if v6 {
            var a = in6_addr()
            guard inet_pton(AF_INET6, host, &a) == 1 else { return .failure(.init("has an invalid IPv6 address \(host)")) }
            guard host == "::1" || isV6Loopback(a) else {
                return .failure(.init("must be a loopback address (127.0.0.1 or [::1]): \(host) would let other machines use the pool"))
            }
            host = "::1"
        } else {
            var a = in_addr()
            guard inet_pton(AF_INET, host, &a) == 1 else {
                return .failure(.init("must be an IP address, 127.0.0.1 or [::1], not \(host)"))
            }
            guard UInt32(bigEndian: a.s_addr) >> 24 == 127 else {
                return .failure(.init("must be a loopback address (127.0.0.1 or [::1]): \(host) would let other machines use the pool"))
            }
        }
        return .success(LoopbackAddress(host: host, port: port, ipv6: v6))
    }

    private static func isV6Loopback(_ a: in6_addr) -> Bool {
        withUnsafeBytes(of: a) { raw in raw.prefix(15).allSatisfy { $0 == 0 } && raw[15] == 1 }
    }
}

/// Why a listen address was refused.
struct LoopbackAddressError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
