import CReckerCurl
import Glibc

/// A response's overflow on disk: what a client has not read yet while its upstream
/// connection goes back to the pool for others. An unnamed file (`O_TMPFILE`), so it is
/// invisible to other users and vanishes with its descriptor. Engine-thread confined.
final class SpillFile {
    private let fd: Int32
    private var writeOffset = 0
    private var readOffset = 0

    /// Opens an unnamed file in `directory`; nil when the directory refuses one.
    init?(directory: String) {
        let fd = recker_open_tmpfile(directory)
        guard fd >= 0 else { return nil }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Bytes written and not read yet.
    var pending: Int { writeOffset - readOffset }

    /// Appends `bytes`; false when the disk refuses them.
    func append(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(writeOffset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        writeOffset += done
        return true
    }

    /// Reads up to `max` of the pending bytes, oldest first. When all are read the file is
    /// emptied, so a long response that spills now and then does not grow it.
    func read(max: Int) -> [UInt8]? {
        let want = min(max, pending)
        guard want > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: want)
        var done = 0
        while done < want {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, want - done, off_t(readOffset + done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            done += n
        }
        readOffset += done
        if readOffset == writeOffset {
            readOffset = 0
            writeOffset = 0
            _ = ftruncate(fd, 0)
        }
        return out
    }
}
