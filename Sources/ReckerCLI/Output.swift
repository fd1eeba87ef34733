import ReckerProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Writes bytes to a file descriptor, whole, retrying EINTR.
struct Output {
    let fd: Int32

    /// Returns false when the write failed (a closed pipe, a full disk).
    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                off += n
            }
            return true
        }
    }

    @discardableResult
    func write(_ s: String) -> Bool { write(Array(s.utf8)) }

    static let stdout = Output(fd: 1)
    static let stderr = Output(fd: 2)
}
