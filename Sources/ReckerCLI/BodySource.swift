import ReckerProtocol

#if canImport(Glibc)
import Glibc
#endif

/// A request body: bytes the command line built (-d, --json, -F), or a file `-T` names,
/// read as it is sent (a file of any size, or an endless stdin, never held whole in memory).
final class BodySource {
    private enum Kind {
        case bytes([UInt8])
        case file(fd: Int32)
    }

    private let kind: Kind
    /// The body's size when known (bytes, a regular file); nil for a pipe or stdin.
    let length: UInt64?
    private var offset = 0
    /// A pipe's bytes once read cannot be read again.
    private var consumed = false
    private let closes: Bool

    init(bytes: [UInt8]) {
        kind = .bytes(bytes)
        length = UInt64(bytes.count)
        closes = false
    }

    /// `path` ("-" for stdin) opened for reading; a `UsageError` (curl's exit 26) if it cannot be.
    init(file path: String) throws(UsageError) {
        guard !path.isEmpty else { throw UsageError("no file named after -T", exitCode: 26) }
        let fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw UsageError("cannot read \(path): \(String(cString: strerror(errno)))", exitCode: 26) }
        var st = stat()
        let regular = fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
        if fd != 0 && !regular && (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw UsageError("cannot read \(path): Is a directory", exitCode: 26)
        }
        kind = .file(fd: fd)
        length = regular ? UInt64(st.st_size) : nil
        closes = fd != 0
    }

    deinit {
        if closes, case .file(let fd) = kind { close(fd) }
    }

    /// Whether there is a body to send at all (an empty one goes as none, with its length 0).
    var isEmpty: Bool { length == 0 }

    /// Back to the first byte, for a retry or a 307/308; false when that cannot be (a pipe
    /// already read from).
    func rewind() -> Bool {
        switch kind {
        case .bytes:
            offset = 0
            return true
        case .file(let fd):
            if length != nil { return lseek(fd, 0, SEEK_SET) == 0 && { offset = 0; return true }() }
            return !consumed
        }
    }

    /// Up to `max` bytes more, and whether they end the body.
    func next(max: Int) throws(ReckerError) -> (bytes: [UInt8], end: Bool) {
        switch kind {
        case .bytes(let all):
            let n = min(max, all.count - offset)
            defer { offset += n }
            return (Array(all[offset ..< offset + n]), offset + n == all.count)
        case .file(let fd):
            consumed = true
            var want = max
            if let length { want = Swift.min(max, Int(length) - offset) }
            guard want > 0 else { return ([], true) }
            var buffer = [UInt8](repeating: 0, count: want)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, want) }
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else {
                    throw ReckerError(.internalError, "reading the upload failed: \(String(cString: strerror(errno)))")
                }
                offset += n
                if n == 0 {
                    if let length, offset < Int(length) {
                        throw ReckerError(.internalError, "the upload file shrank while it was sent")
                    }
                    return ([], true)
                }
                return (Array(buffer[..<n]), length.map { offset >= Int($0) } ?? false)
            }
        }
    }
}
