extension Message {
    /// Flag bits (docs/PROTOCOL.md §2).
    package enum Flag {
        package static let endRequest: UInt8 = 0x01
        package static let reused: UInt8 = 0x01
        package static let mayHaveReachedUpstream: UInt8 = 0x01
        package static let retrySafe: UInt8 = 0x02
        package static let facts: UInt8 = 0x02
        package static let more: UInt8 = 0x01
    }

    /// The message as one frame. A field that does not fit its wire type (a string over
    /// 65535 bytes, more than 65535 headers) is `MALFORMED_FRAME`: nothing is cut.
    package var frame: Frame {
        get throws(ReckerError) {
        var w = ByteWriter()
        var flags: UInt8 = 0
        let type: UInt8
        switch self {
        case .hello(let h):
            type = FrameType.hello
            w.raw(Message.magic); w.u16(h.minVersion); w.u16(h.maxVersion); w.u32(h.features)
        case .welcome(let h):
            type = FrameType.welcome
            w.raw(Message.magic); w.u16(h.version); w.u32(h.features)
            w.u32(h.maxFrame); w.u32(h.maxInFlight); w.u32(h.initialWindow)
            if h.features & Feature.limits != 0 {
                guard let l = h.headerLimits, let count = UInt32(exactly: l.count), let bytes = UInt32(exactly: l.bytes) else {
                    throw ReckerError(.malformedFrame, "WELCOME with LIMITS needs header limits that fit a u32")
                }
                w.u32(count); w.u32(bytes)
            }
        case .requestHead(_, let head, let end):
            type = FrameType.requestHead
            if end { flags |= Flag.endRequest }
            try w.str(head.method); try w.str(head.url); w.u64(head.bodyLength ?? Message.unknownLength)
            try w.count16(head.headers.count, of: "headers")
            for h in head.headers { try w.str(h.name); try w.str(h.value) }
            try Message.encode(head.options, into: &w)
        case .requestBody(_, let data, let end):
            type = FrameType.requestBody
            if end { flags |= Flag.endRequest }
            w.raw(data)
        case .responseHead(_, let h):
            type = FrameType.responseHead
            if h.reused { flags |= Flag.reused }
            w.u16(h.status); w.u8(h.httpVersion); w.u64(h.connectionID)
            w.u32(h.queueMicros); w.u32(h.connectMicros); w.u32(h.tlsMicros); w.u32(h.firstByteMicros)
            try w.count16(h.headers.count, of: "headers")
            for x in h.headers { try w.str(x.name); try w.str(x.value) }
            if let f = h.facts {
                flags |= Flag.facts
                try w.str(f.reason); try w.str(f.remoteIP); w.u16(f.remotePort); try w.str(f.localIP); w.u16(f.localPort)
                w.u32(f.namelookupMicros)
            }
        case .responseBody(_, let data):
            type = FrameType.responseBody
            w.raw(data)
        case .responseEnd(_, let e):
            type = FrameType.responseEnd
            w.u32(e.totalMicros); w.u64(e.bodyBytes)
        case .windowUpdate(_, let inc):
            type = FrameType.windowUpdate
            w.u32(inc)
        case .cancel:
            type = FrameType.cancel
        case .error(_, let e):
            type = FrameType.error
            if e.mayHaveReachedUpstream { flags |= Flag.mayHaveReachedUpstream }
            if e.retrySafe { flags |= Flag.retrySafe }
            w.u16(e.code.rawValue); w.u32(e.detail); try w.str(e.message)
        case .ping(let o):
            type = FrameType.ping
            w.raw(o)
        case .pong(let o):
            type = FrameType.pong
            w.raw(o)
        case .statsRequest(_, let format):
            type = FrameType.statsRequest
            if format != 0 { w.u8(format) }
        case .statsResponse(_, let json, let more):
            type = FrameType.statsResponse
            if more { flags |= Flag.more }
            w.raw(json)
        }
        return Frame(type: type, flags: flags, stream: stream, body: w.bytes)
        }
    }

    /// The message with its length prefix, as sent on the socket.
    package var encoded: [UInt8] {
        get throws(ReckerError) { try frame.encoded }
    }

    private static func encode(_ o: RequestOptions, into w: inout ByteWriter) throws(ReckerError) {
        var items: [(UInt16, [UInt8])] = []
        func u32(_ v: UInt32) -> [UInt8] { var x = ByteWriter(); x.u32(v); return x.bytes }
        if let v = o.connectTimeoutMs { items.append((RequestOptions.Tag.connectTimeout, u32(v))) }
        if let v = o.totalTimeoutMs { items.append((RequestOptions.Tag.totalTimeout, u32(v))) }
        if let v = o.followRedirects { items.append((RequestOptions.Tag.followRedirects, [v])) }
        if let v = o.compressed { items.append((RequestOptions.Tag.compressed, [v ? 1 : 0])) }
        if let v = o.keepMethod { items.append((RequestOptions.Tag.keepMethod, [v ? 1 : 0])) }
        if let v = o.insecure { items.append((RequestOptions.Tag.insecure, [v ? 1 : 0])) }
        for u in o.unknown { items.append((u.tag, u.value)) }
        try w.count16(items.count, of: "options")
        for (tag, value) in items {
            w.u16(tag)
            try w.count16(value.count, of: "bytes of an option value")
            w.raw(value)
        }
    }

    /// Decodes one frame. Unknown types and bodies that do not fit their type are
    /// connection errors (docs/PROTOCOL.md §1).
    package init(frame f: Frame) throws(ReckerError) {
        var r = ByteReader(f.body[...])
        let s = f.stream
        switch f.type {
        case FrameType.hello:
            guard Array(try r.bytes(4)) == Message.magic else { throw ReckerError(.badHandshake, "HELLO has a wrong magic") }
            self = .hello(Hello(minVersion: try r.u16(), maxVersion: try r.u16(), features: try r.u32()))
            try r.expectEnd()
        case FrameType.welcome:
            guard Array(try r.bytes(4)) == Message.magic else { throw ReckerError(.badHandshake, "WELCOME has a wrong magic") }
            var w = Welcome(version: try r.u16(), features: try r.u32(), maxFrame: try r.u32(),
                            maxInFlight: try r.u32(), initialWindow: try r.u32())
            if w.features & Feature.limits != 0 {
                w.headerLimits = HeaderLimits(count: Int(try r.u32()), bytes: Int(try r.u32()))
            }
            try r.expectEnd()
            self = .welcome(w)
        case FrameType.requestHead:
            let method = try r.str()
            let url = try r.str()
            let length = try r.u64()
            var head = RequestHead(method: method, url: url,
                                   bodyLength: length == Message.unknownLength ? nil : length)
            let n = try r.u16()
            for _ in 0 ..< n { head.headers.append((name: try r.str(), value: try r.str())) }
            head.options = try Message.decodeOptions(&r)
            try r.expectEnd()
            self = .requestHead(stream: s, head, endRequest: f.flags & Flag.endRequest != 0)
        case FrameType.requestBody:
            self = .requestBody(stream: s, Array(r.rest()), endRequest: f.flags & Flag.endRequest != 0)
        case FrameType.responseHead:
            var h = ResponseHead(status: try r.u16(), httpVersion: try r.u8(), connectionID: try r.u64(),
                                 reused: f.flags & Flag.reused != 0, queueMicros: try r.u32(),
                                 connectMicros: try r.u32(), tlsMicros: try r.u32(), firstByteMicros: try r.u32())
            let n = try r.u16()
            for _ in 0 ..< n { h.headers.append((name: try r.str(), value: try r.str())) }
            if f.flags & Flag.facts != 0 {
                h.facts = ResponseFacts(reason: try r.str(), remoteIP: try r.str(), remotePort: try r.u16(), localIP: try r.str(),
                                        localPort: try r.u16(), namelookupMicros: try r.u32())
            }
            try r.expectEnd()
            self = .responseHead(stream: s, h)
        case FrameType.responseBody:
            self = .responseBody(stream: s, Array(r.rest()))
        case FrameType.responseEnd:
            self = .responseEnd(stream: s, ResponseEnd(totalMicros: try r.u32(), bodyBytes: try r.u64()))
            try r.expectEnd()
        case FrameType.windowUpdate:
            let inc = try r.u32()
            try r.expectEnd()
            guard inc > 0 && inc < 1 << 31 else { throw ReckerError(.malformedFrame, "WINDOW_UPDATE increment \(inc) out of range") }
            self = .windowUpdate(stream: s, increment: inc)
        case FrameType.cancel:
            try r.expectEnd()
            self = .cancel(stream: s)
        case FrameType.error:
            let code = ReckerError.Code(rawValue: try r.u16())
            let detail = try r.u32()
            let message = try r.str()
            try r.expectEnd()
            self = .error(stream: s, ReckerError(code, message, detail: detail,
                                                 mayHaveReachedUpstream: f.flags & Flag.mayHaveReachedUpstream != 0,
                                                 retrySafe: f.flags & Flag.retrySafe != 0))
        case FrameType.ping, FrameType.pong:
            let o = Array(try r.bytes(8))
            try r.expectEnd()
            self = f.type == FrameType.ping ? .ping(o) : .pong(o)
        case FrameType.statsRequest:
            let format = r.remaining > 0 ? try r.u8() : 0
            try r.expectEnd()
            self = .statsRequest(stream: s, format: format)
        case FrameType.statsResponse:
            self = .statsResponse(stream: s, json: Array(r.rest()), more: f.flags & Flag.more != 0)
        default:
            throw ReckerError(.unknownFrameType, "unknown frame type 0x\(String(f.type, radix: 16))")
        }
    }

    private static func decodeOptions(_ r: inout ByteReader) throws(ReckerError) -> RequestOptions {
        var o = RequestOptions()
        let n = try r.u16()
        for _ in 0 ..< n {
            let tag = try r.u16()
            let len = Int(try r.u16())
            var v = ByteReader(try r.bytes(len))
            switch tag {
            case RequestOptions.Tag.connectTimeout: o.connectTimeoutMs = try v.u32(); try v.expectEnd()
            case RequestOptions.Tag.totalTimeout: o.totalTimeoutMs = try v.u32(); try v.expectEnd()
            case RequestOptions.Tag.followRedirects: o.followRedirects = try v.u8(); try v.expectEnd()
            case RequestOptions.Tag.compressed: o.compressed = try v.u8() != 0; try v.expectEnd()
            case RequestOptions.Tag.keepMethod: o.keepMethod = try v.u8() != 0; try v.expectEnd()
            case RequestOptions.Tag.insecure: o.insecure = try v.u8() != 0; try v.expectEnd()
            default: o.unknown.append((tag: tag, value: Array(v.rest())))
            }
        }
        return o
    }
}
