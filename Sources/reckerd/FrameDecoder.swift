import NIOCore
import ReckerProtocol

/// Splits the client's byte stream into frames. The length prefix is checked the moment
/// it arrives, so an oversized frame is refused without buffering its payload.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = Frame
    let maxLength: Int
    /// A frame begun must be complete this soon (PROTOCOL.md 1.1).
    static let partialFrameTimeoutS: Int64 = 10
    /// Counts frames begun; a timer set when one begins fires only if it is still the same.
    private let partial = PartialFrame()

    final class PartialFrame {
        var pending = false
        var generation = 0
        var timer: Scheduled<Void>?

        func complete() {
            pending = false
            timer?.cancel()
            timer = nil
        }
    }

    init(maxLength: Int) { self.maxLength = maxLength }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return waitForRest(context, buffer) }
        try Frame.checkLength(length, max: maxLength)
        guard buffer.readableBytes >= 4 + Int(length) else { return waitForRest(context, buffer) }
        if partial.pending { partial.complete() }
        buffer.moveReaderIndex(forwardBy: 4)
        let type = buffer.readInteger(as: UInt8.self)!
        let flags = buffer.readInteger(as: UInt8.self)!
        let stream = buffer.readInteger(as: UInt32.self)!
        let body = buffer.readBytes(length: Int(length) - Frame.headerSize)!
        context.fireChannelRead(wrapInboundOut(Frame(type: type, flags: flags, stream: stream, body: body)))
        return .continue
    }

    /// Needs more bytes; when part of a frame is here, the rest must come within the timeout.
    private func waitForRest(_ context: ChannelHandlerContext, _ buffer: ByteBuffer) -> DecodingState {
        guard buffer.readableBytes > 0, !partial.pending else { return .needMoreData }
        partial.pending = true
        partial.generation += 1
        let seen = partial.generation
        let state = NIOLoopBound(partial, eventLoop: context.eventLoop)
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        partial.timer = context.eventLoop.scheduleTask(in: .seconds(Self.partialFrameTimeoutS)) {
            guard state.value.pending, state.value.generation == seen else { return }
            ctx.value.fireErrorCaught(ReckerError(.malformedFrame, "frame incomplete for \(Self.partialFrameTimeoutS) s"))
        }
        return .needMoreData
    }

    /// The connection is gone: no timer outlives it.
    mutating func decoderRemoved(context: ChannelHandlerContext) {
        partial.complete()
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            throw ReckerError(.malformedFrame, "connection closed inside a frame")
        }
        return .needMoreData
    }
}
