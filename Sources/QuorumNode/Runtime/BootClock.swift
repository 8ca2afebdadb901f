import QuorumCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The node's clock: `CLOCK_BOOTTIME`, the one place quorumd reads the time that the core's
/// leases, promises and silences are measured on.
///
/// `CLOCK_MONOTONIC` (and so `NIODeadline`) stops while the host is suspended: a master whose
/// host slept for a minute would wake up believing that no time had passed and that its lease
/// still ran, while the others elected a new master long ago. `CLOCK_BOOTTIME` is the same
/// clock but keeps counting through a suspend, so the first event the core sees after a resume
/// (a timer, a frame, a `status` request) carries an instant past the lease, and the node steps
/// down before it acts or answers.
///
/// Timers stay on NIO's monotonic scheduling: they are relative delays, and a timer that fires
/// late after a resume only brings the next event, which reads this clock.
public enum BootClock {
    /// Now, in nanoseconds since boot, suspend included.
    public static func now() -> Instant {
        Instant(nanoseconds: nanoseconds(CLOCK_BOOTTIME))
    }

    /// The wall-clock time, milliseconds since the Unix epoch: a node's birth (a value peers
    /// compare) and the epochs of candidacies that cannot learn earlier ones are read from
    /// it, never a lease or a timeout.
    public static func wallClockMilliseconds() -> Int64 {
        nanoseconds(CLOCK_REALTIME) / 1_000_000
    }

    /// Reads one clock (also used by the tests to compare `CLOCK_BOOTTIME` with
    /// `CLOCK_MONOTONIC`).
    static func nanoseconds(_ clock: clockid_t) -> Int64 {
        var ts = timespec()
        // Cannot fail for these clocks (Linux ≥ 2.6.39): a clock that fails is no clock to
        // hold a lease on.
        let result = clock_gettime(clock, &ts)
        precondition(result == 0, "clock_gettime(\(clock)) failed: errno \(errno)")
        return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
    }
}
