import QuorumCore

/// One host's monotonic clock, as a function of global simulated time.
///
/// The product reads `CLOCK_BOOTTIME`: it runs at the host's own rate, counts while the host
/// is suspended, and so jumps forward over a stall of the hypervisor or a VM migration. Each host
/// starts at an origin of its own, so instants of two nodes are never comparable, as on
/// real hosts. The planted hole `stoppedClock` makes the clock stop while its host is
/// suspended (`CLOCK_MONOTONIC`).
struct NodeClock: Sendable {
    /// Local nanoseconds per global nanosecond.
    private(set) var rate: Double
    private var anchorGlobal: Int64
    private var anchorLocal: Int64
    /// While stopped: the global instant it stopped at.
    private var stoppedAt: Int64? = nil

    init(rate: Double, origin: Int64) {
        self.rate = rate
        anchorGlobal = 0
        anchorLocal = origin
    }

    static let ideal = NodeClock(rate: 1, origin: 0)

    /// The host's reading at global time `g`.
    func local(_ g: Instant) -> Instant {
        let t = stoppedAt.map { min($0, g.nanoseconds) } ?? g.nanoseconds
        if rate == 1 { return Instant(nanoseconds: anchorLocal &+ (t &- anchorGlobal)) }
        return Instant(nanoseconds: anchorLocal &+ Int64((Double(t &- anchorGlobal) * rate).rounded(.down)))
    }

    /// The first global instant at which this clock reads at least `l` (if it keeps running).
    func global(reaching l: Instant) -> Instant? {
        guard stoppedAt == nil else { return nil }
        let d = l.nanoseconds &- anchorLocal
        if rate == 1 { return Instant(nanoseconds: anchorGlobal &+ d) }
        return Instant(nanoseconds: anchorGlobal &+ Int64((Double(d) / rate).rounded(.up)) &+ 1)
    }

    var isStopped: Bool { stoppedAt != nil }

    private mutating func rebase(at g: Instant) {
        anchorLocal = local(g).nanoseconds
        anchorGlobal = g.nanoseconds
        if stoppedAt != nil { stoppedAt = g.nanoseconds }
    }

    mutating func stop(at g: Instant) {
        guard stoppedAt == nil else { return }
        rebase(at: g)
        stoppedAt = g.nanoseconds
    }

    mutating func start(at g: Instant) {
        guard stoppedAt != nil else { return }
        rebase(at: g)
        stoppedAt = nil
    }
}
