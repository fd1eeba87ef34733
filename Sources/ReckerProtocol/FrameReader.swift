/// Splits a byte stream into frames, refusing an oversized frame as soon as its length
/// prefix arrives, so the payload is never buffered.
package struct FrameReader {
    package var maxLength: Int
    private var buffer: [UInt8] = []
    private var start = 0

    package init(maxLength: Int = Frame.defaultMaxLength) {
        self.maxLength = maxLength
    }

    /// Bytes received but not yet returned as a frame: more than 0 means a frame has begun.
    package var buffered: Int { buffer.count - start }

    /// Adds bytes read from the socket.
    package mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if start > 0 && start == buffer.count {
            // One large frame does not keep its allocation for the rest of the connection.
            buffer.removeAll(keepingCapacity: buffer.capacity <= Self.keptCapacity)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    private static let keptCapacity = 128 * 1024

    /// The next whole frame, or nil until more bytes arrive.
    package mutating func next() throws(ReckerError) -> Frame? {
        let available = buffer.count - start
        guard available >= 4 else { return nil }
        let length = buffer[start ..< start + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        try Frame.checkLength(length, max: maxLength)
        guard available >= 4 + Int(length) else { return nil }
        let p = start + 4
        let stream = buffer[p + 2 ..< p + 6].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let frame = Frame(type: buffer[p], flags: buffer[p + 1], stream: stream,
                          body: Array(buffer[p + 6 ..< p + Int(length)]))
        start = p + Int(length)
        if start > 65536 && start * 2 > buffer.count {
            buffer.removeSubrange(0 ..< start)
            start = 0
        }
        return frame
    }
}
