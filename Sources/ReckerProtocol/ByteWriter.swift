/// Appends big-endian integers and length-prefixed strings to a byte array.
package struct ByteWriter {
    package var bytes: [UInt8]

    package init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    package mutating func u8(_ v: UInt8) { bytes.append(v) }
    package mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(truncatingIfNeeded: v)) }
    package mutating func u32(_ v: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }
    package mutating func u64(_ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }
    package mutating func raw<C: Collection>(_ data: C) where C.Element == UInt8 { bytes.append(contentsOf: data) }

    /// A `str`: u16 length then UTF-8. A string over 65535 bytes cannot be a field:
    /// `MALFORMED_FRAME`, never a cut.
    package mutating func str(_ s: String) throws(ReckerError) {
        let n = s.utf8.count
        guard let length = UInt16(exactly: n) else {
            throw ReckerError(.malformedFrame, "a string field of \(n) bytes exceeds 65535")
        }
        u16(length)
        bytes.append(contentsOf: s.utf8)
    }

    /// A u16 count of `what`: more than 65535 cannot be encoded.
    package mutating func count16(_ n: Int, of what: String) throws(ReckerError) {
        guard let v = UInt16(exactly: n) else {
            throw ReckerError(.malformedFrame, "\(n) \(what) exceed the 65535 a frame can carry")
        }
        u16(v)
    }

    /// Overwrites the 4 bytes at `offset` with `v`, for a length known only at the end.
    package mutating func patchU32(at offset: Int, _ v: UInt32) {
        bytes[offset] = UInt8(truncatingIfNeeded: v >> 24)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: v >> 16)
        bytes[offset + 2] = UInt8(truncatingIfNeeded: v >> 8)
        bytes[offset + 3] = UInt8(truncatingIfNeeded: v)
    }
}
