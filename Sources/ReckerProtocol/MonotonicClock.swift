#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic time in nanoseconds, for durations that must not jump with the wall clock.
package enum MonotonicClock {
    package static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Microseconds since `start`, saturated to fit a u32 wire field.
    package static func micros(since start: UInt64) -> UInt32 {
        let now = nanoseconds()
        guard now > start else { return 0 }
        return UInt32(clamping: (now - start) / 1000)
    }
}
