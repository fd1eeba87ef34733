/// One frame: the unit of everything on the socket (docs/PROTOCOL.md §1).
package struct Frame: Sendable, Equatable {
    /// Bytes of type, flags and stream: the smallest payload.
    package static let headerSize = 6
    /// The default and largest-announced-by-default frame payload.
    package static let defaultMaxLength = 1 << 20

    package var type: UInt8
    package var flags: UInt8
    package var stream: UInt32
    package var body: [UInt8]

    package init(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, body: [UInt8] = []) {
        self.type = type
        self.flags = flags
        self.stream = stream
        self.body = body
    }

    /// Checks a frame's length prefix before any of its payload is read.
    package static func checkLength(_ length: UInt32, max: Int) throws(ReckerError) {
        if length < UInt32(headerSize) {
            throw ReckerError(.malformedFrame, "frame length \(length) is below the minimum of \(headerSize)")
        }
        if UInt64(length) > UInt64(max) {
            throw ReckerError(.frameTooLarge, "frame length \(length) exceeds the maximum of \(max)")
        }
    }

    /// The frame with its length prefix, as sent on the socket; a body too large for the
    /// u32 length is `FRAME_TOO_LARGE`.
    package var encoded: [UInt8] {
        get throws(ReckerError) {
            guard let length = UInt32(exactly: Frame.headerSize + body.count) else {
                throw ReckerError(.frameTooLarge, "a frame body of \(body.count) bytes exceeds the u32 length")
            }
            return prefixed(length)
        }
    }

    /// Appends a RESPONSE_BODY frame of `payload` (no END flag) to `output` without building
    /// the frame first: the daemon's hot path, straight into a connection's output buffer.
    /// The caller keeps payloads within the announced frame size, far below the u32 length.
    package static func appendResponseBody(stream: UInt32, _ payload: ArraySlice<UInt8>, to output: inout [UInt8]) {
        let length = UInt32(truncatingIfNeeded: headerSize + payload.count)
        for shift in [24, 16, 8, 0] as [UInt32] { output.append(UInt8(truncatingIfNeeded: length >> shift)) }
        output.append(FrameType.responseBody)
        output.append(0)
        for shift in [24, 16, 8, 0] as [UInt32] { output.append(UInt8(truncatingIfNeeded: stream >> shift)) }
        output.append(contentsOf: payload)
    }

    private func prefixed(_ length: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: 4 + Frame.headerSize + body.count)
        w.u32(length)
        w.u8(type)
        w.u8(flags)
        w.u32(stream)
        w.raw(body)
        return w.bytes
    }
}

/// Frame type numbers (docs/PROTOCOL.md §2).
package enum FrameType {
    package static let hello: UInt8 = 0x01
    package static let welcome: UInt8 = 0x02
    package static let requestHead: UInt8 = 0x10
    package static let requestBody: UInt8 = 0x11
    package static let responseHead: UInt8 = 0x20
    package static let responseBody: UInt8 = 0x21
    package static let responseEnd: UInt8 = 0x22
    package static let windowUpdate: UInt8 = 0x30
    package static let cancel: UInt8 = 0x31
    package static let error: UInt8 = 0x3F
    package static let ping: UInt8 = 0x40
    package static let pong: UInt8 = 0x41
    package static let statsRequest: UInt8 = 0x50
    package static let statsResponse: UInt8 = 0x51
}
