import Glibc

/// Reads the files the config names (the config itself, CA bundles) without Foundation,
/// refusing what is not a regular file so a FIFO or a device cannot hang or flood a load.
enum ConfigFile {
    /// Why a file could not be read, in words ("No such file or directory").
    struct ReadError: Error, CustomStringConvertible {
        var description: String
    }

    /// The whole content of the regular file at `path`, at most `limit` bytes.
    static func read(_ path: String, limit: Int) throws(ReadError) -> [UInt8] {
        // O_NONBLOCK: opening a FIFO must not wait for a writer.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw ReadError(description: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ReadError(description: String(cString: strerror(errno))) }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw ReadError(description: st.st_mode & S_IFMT == S_IFDIR ? "is a directory" : "is not a regular file")
        }
        guard Int(st.st_size) <= limit else { throw ReadError(description: "is larger than \(limit) bytes") }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size) + 1)
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw ReadError(description: String(cString: strerror(errno))) }
            if n == 0 { break }
            filled += n
        }
        // More than fstat said: the file is being written; a torn copy is no config.
        guard filled < bytes.count else { throw ReadError(description: "changed while it was read; try again") }
        return Array(bytes[..<filled])
    }
}
