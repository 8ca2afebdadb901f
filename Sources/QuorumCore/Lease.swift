/// The master's heartbeat counter, when each heartbeat was sent, and the one rule for when
/// a lease ends.
///
/// A follower acknowledges a heartbeat by echoing its counter; the master dates that
/// acknowledgement at the heartbeat's *send* time, and the voter's promise runs from its
/// *receipt*, so every promise outlasts the lease it backs.
struct Lease: Sendable {
    private(set) var sequence: UInt64 = 0
    private var sentAt: [UInt64: Instant] = [:]

    /// Starts a new heartbeat round at `now`; returns its counter.
    mutating func nextHeartbeat(now: Instant) -> UInt64 {
        sequence += 1
        sentAt[sequence] = now
        if sequence > 64 { sentAt[sequence - 64] = nil }
        return sequence
    }

    /// When the heartbeat with this counter was sent, if it is recent.
    func sendTime(of counter: UInt64) -> Instant? { sentAt[counter] }

    /// When a lease backed by these acknowledgements ends: the latest instant `t` such that
    /// the nodes that acknowledged at `t` or later (self at `now`) block every election,
    /// plus `duration`. Every subset is considered, so a half that acknowledged earlier in the
    /// epoch never hides the half that holds the tie-breaker now. `nil`: no such set.
    static func end(self name: String, acknowledgements: [String: Instant], now: Instant, duration: Duration,
                    blocks: (Set<String>) -> Bool) -> Instant? {
        var times = acknowledgements
        times[name] = now
        let ordered = Set(times.values).sorted(by: >)
        for t in ordered {
            let backing = Set(times.filter { $0.value >= t }.keys)
            if blocks(backing) { return t + duration }
        }
        return nil
    }

    /// The rule before hole 8 was closed (test only): the acknowledgement of rank `size/2+1`,
    /// with the tie-breaker only when exactly half ever acknowledged.
    static func plantedBlinkingEnd(self name: String, acknowledgements: [String: Instant], members: [MemberEntry], now: Instant,
                                   duration: Duration, tieBreakerHalf: (Set<String>) -> Bool) -> Instant? {
        var times: [Instant] = [now]
        for m in members where m.name != name { if let t = acknowledgements[m.name] { times.append(t) } }
        let needed = members.count / 2 + 1
        times.sort(by: >)
        if times.count >= needed { return times[needed - 1] + duration }
        let holders = Set([name] + members.filter { acknowledgements[$0.name] != nil }.map(\.name))
        if times.count * 2 == members.count, tieBreakerHalf(holders) { return times[times.count - 1] + duration }
        return nil
    }
}
