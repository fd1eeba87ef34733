import NIOCore
import ReckerProtocol

/// Splits the client's byte stream into frames. The length prefix is checked the moment
/// it arrives, so an oversized frame is refused without buffering its payload.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = Frame
    let maxLength: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        try Frame.checkLength(length, max: maxLength)
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let type = buffer.readInteger(as: UInt8.self)!
        let flags = buffer.readInteger(as: UInt8.self)!
        let stream = buffer.readInteger(as: UInt32.self)!
        let body = buffer.readBytes(length: Int(length) - Frame.headerSize)!
        context.fireChannelRead(wrapInboundOut(Frame(type: type, flags: flags, stream: stream, body: body)))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            throw ReckerError(.malformedFrame, "connection closed inside a frame")
        }
        return .needMoreData
    }
}
