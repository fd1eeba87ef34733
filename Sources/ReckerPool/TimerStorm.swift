/// libcurl's timer requests, watched for a storm: a timeout of 0 asked for while libcurl runs
/// its timeouts means "again at once"; asked for every time with nothing else happening, it
/// would hold a core (a daemon with no upstream connection left spun so for minutes under
/// libcurl 8.14 in a test run, cause not found). After `length` such requests in a row the
/// engine is told to say so, once, and each later one waits a millisecond: that costs a
/// transfer that truly wants "at once" a millisecond, and the storm its core. Pure.
package struct TimerStorm: Sendable {
    package let length: Int
    package private(set) var run = 0

    package init(length: Int = 10_000) {
        self.length = length
    }

    /// libcurl asked to be called back in `timeoutMs` (-1: never), from inside its timeout
    /// handling or not: when to call it, in milliseconds (nil: never), and whether the storm
    /// has just reached its length.
    package mutating func request(_ timeoutMs: Int, duringTimeout: Bool) -> (delayMs: UInt64?, warn: Bool) {
        guard timeoutMs >= 0 else {
            run = 0
            return (nil, false)
        }
        guard timeoutMs == 0 && duringTimeout else {
            if timeoutMs > 0 { run = 0 }
            return (UInt64(timeoutMs), false)
        }
        run += 1
        return (run >= length ? 1 : 0, run == length)
    }

    /// The warning the engine logs once a storm reaches its length, with what it holds.
    package func warning(holding: String) -> String {
        "libcurl asked to be called again at once \(length) times in a row with nothing else happening: "
            + "calling it back every millisecond while this lasts (\(holding))"
    }

    /// Something happened on a socket: whatever follows is not the same storm.
    package mutating func socketEvent() {
        run = 0
    }
}
