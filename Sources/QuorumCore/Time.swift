/// A point on the node's monotonic clock, in nanoseconds from an arbitrary origin.
///
/// The core never reads a clock: the shell (or a simulator) passes the current instant
/// with every event. Instants from different processes are not comparable, so none is
/// ever sent over the wire.
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = Instant(nanoseconds: 0)

    public static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }

    public static func + (a: Instant, d: Duration) -> Instant {
        Instant(nanoseconds: a.nanoseconds &+ d.nanosecondsClamped)
    }

    public static func - (a: Instant, b: Instant) -> Duration {
        .nanoseconds(a.nanoseconds &- b.nanoseconds)
    }

    public var description: String {
        let ms = Double(nanoseconds) / 1_000_000
        return "t=\(ms)ms"
    }
}

extension Duration {
    /// The duration in whole nanoseconds, clamped to `Int64`.
    public var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (mul, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = mul.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds < 0 ? .min : .max }
        return sum
    }

    /// The duration in (fractional) milliseconds, for logs and reports.
    public var milliseconds: Double { Double(nanosecondsClamped) / 1_000_000 }

    /// A duration as operators write it: `200ms`, `10s`, or plain seconds (`2.5`); nil for
    /// anything else, a negative value, or more than about 30 years. Rounded to milliseconds.
    public init?(operatorText text: String) {
        let (number, scale): (Substring, Double) = text.hasSuffix("ms") ? (text.dropLast(2), 1)
            : (text.hasSuffix("s") ? (text.dropLast(), 1000) : (Substring(text), 1000))
        guard let n = Double(number), n.isFinite, n >= 0, n * scale <= 1e12 else { return nil }
        self = .milliseconds(Int64((n * scale).rounded()))
    }
}

/// A small, fast, seedable generator (SplitMix64). The core takes its randomness from one
/// of these, seeded by the shell, so a simulator can replay any run exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Duration {
    /// Seconds as settings and messages write them: `30`, `2.5`, `0.125` (to the millisecond).
    public var secondsText: String {
        let (seconds, attoseconds) = components
        let milliseconds = attoseconds / 1_000_000_000_000_000
        guard milliseconds > 0 else { return "\(seconds)" }
        var fraction = String(milliseconds)
        while fraction.count < 3 { fraction = "0" + fraction }
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(seconds).\(fraction)"
    }
}
