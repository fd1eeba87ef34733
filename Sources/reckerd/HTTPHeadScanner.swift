/// Watches the bytes of a request head before the parser sees them, for what
/// libhttp-parser forgives but a proxy must not (RFC 9112 §2.2, §5.2, §11.2): a bare LF or
/// bare CR as a line end, and obs-fold (a header line continued on the next line). It also
/// finds where the head ends, so the parser is never handed body bytes as head, and
/// bounds the head's size. Pure: bytes in, a verdict out.
struct HTTPHeadScanner {
    enum Verdict: Equatable {
        case more
        /// The byte just scanned was the head's last (the LF of its empty line).
        case endOfHead
        case bareLineEnd
        case obsFold
        case tooLong
    }

    /// Most bytes a head may have, request line and line ends included.
    let limit: Int
    private var length = 0
    private var started = false
    private var lineLength = 0
    private var afterCR = false
    private var atLineStart = false
    /// Whether any byte of the current message has been seen (for the header timeout).
    var hasBegun: Bool { started || afterCR }

    init(limit: Int) { self.limit = limit }

    /// Ready for the next message's head.
    mutating func reset() { self = HTTPHeadScanner(limit: limit) }

    mutating func scan(_ b: UInt8) -> Verdict {
        length += 1
        guard length <= limit else { return .tooLong }
        if afterCR {
            afterCR = false
            guard b == 0x0A else { return .bareLineEnd }
            // Empty lines before the request line are ignored (RFC 9112 §2.2).
            guard started else { return .more }
            if lineLength == 0 { return .endOfHead }
            lineLength = 0
            atLineStart = true
            return .more
        }
        switch b {
        case 0x0D:
            afterCR = true
            return .more
        case 0x0A:
            return .bareLineEnd
        case 0x20 where atLineStart, 0x09 where atLineStart:
            return .obsFold
        default:
            started = true
            atLineStart = false
            lineLength += 1
            return .more
        }
    }
}
