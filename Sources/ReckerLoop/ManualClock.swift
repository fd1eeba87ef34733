import Synchronization

/// Time a test moves by hand (swift-nio's `advanceTime`, Envoy's MockTimer): a loop made
/// with `EventLoop(clock: manual.read)` and turned with `turn()` fires its timers when the
/// test has moved the time past them, and never sooner, so timers are tested without
/// waiting for them.
package final class ManualClock: Sendable {
    private let value: Atomic<UInt64>

    package init(_ start: UInt64 = 1_000_000_000) { value = Atomic(start) }

    /// The clock to hand to `EventLoop(clock:)`.
    package var read: @Sendable () -> UInt64 { { [self] in value.load(ordering: .acquiring) } }

    package var now: UInt64 { value.load(ordering: .acquiring) }

    /// Moves the time on by `nanoseconds`.
    package func advance(by nanoseconds: UInt64) { value.add(nanoseconds, ordering: .acquiringAndReleasing) }
}
