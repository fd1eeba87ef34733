/// Reads big-endian fields from a frame body; every read past the end is `MALFORMED_FRAME`.
package struct ByteReader {
    private let bytes: ArraySlice<UInt8>
    private var index: Int

    package init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.index = bytes.startIndex
    }

    package var remaining: Int { bytes.endIndex - index }

    private mutating func take(_ n: Int) throws(ReckerError) -> ArraySlice<UInt8> {
        guard n <= remaining else { throw ReckerError(.malformedFrame, "frame body ends inside a field") }
        defer { index += n }
        return bytes[index ..< index + n]
    }

    package mutating func u8() throws(ReckerError) -> UInt8 { try take(1).first! }
    package mutating func u16() throws(ReckerError) -> UInt16 {
        try take(2).reduce(0) { $0 << 8 | UInt16($1) }
    }
    package mutating func u32() throws(ReckerError) -> UInt32 {
        try take(4).reduce(0) { $0 << 8 | UInt32($1) }
    }
    package mutating func u64() throws(ReckerError) -> UInt64 {
        try take(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
    package mutating func bytes(_ n: Int) throws(ReckerError) -> ArraySlice<UInt8> { try take(n) }
    package mutating func rest() -> ArraySlice<UInt8> {
        defer { index = bytes.endIndex }
        return bytes[index...]
    }

    /// A `str`; invalid UTF-8 is `MALFORMED_FRAME`.
    package mutating func str() throws(ReckerError) -> String {
        let n = Int(try u16())
        let raw = try take(n)
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw ReckerError(.malformedFrame, "a string field is not UTF-8")
        }
        return s
    }

    /// Fails when bytes are left over where the frame type defines no trailing field.
    package func expectEnd() throws(ReckerError) {
        guard remaining == 0 else { throw ReckerError(.malformedFrame, "\(remaining) unexpected bytes at the end of a frame") }
    }
}
