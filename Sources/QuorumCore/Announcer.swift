/// When a node broadcasts its announcement: several times at first (a lost datagram is
/// repeated within milliseconds), then at a slow steady rate (partitions heal within it).
struct Announcer: Sendable {
    private let startedAt: Instant
    private let timing: Timing
    private var count = 0
    private(set) var next: Instant

    init(startedAt: Instant, timing: Timing) {
        self.startedAt = startedAt
        self.timing = timing
        next = startedAt
    }

    /// `true` when an announcement is due at `now`; the schedule then moves on.
    mutating func isDue(now: Instant) -> Bool {
        guard now >= next else { return false }
        count += 1
        if count < timing.announceBackoff.count {
            next = startedAt + timing.announceBackoff[count]
            if next <= now { next = now + .milliseconds(1) }
        } else {
            next = now + timing.announceInterval
        }
        return true
    }
}
