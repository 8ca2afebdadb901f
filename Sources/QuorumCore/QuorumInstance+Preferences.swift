/// Who is wanted as master: eligibility, priority and preemption (issue 14). Every knob here
/// is a preference among members that may be master; none is a vote weight, so majorities,
/// epochs and leases stay what keeps the cluster safe. A wrong or stale view of a peer's
/// eligibility can only delay an election (votes go to a node that does not stand), never
/// make two masters.
extension QuorumInstance {
    /// Whether the preferences count: this node and every alive member speak protocol 3.
    /// Until then the cluster elects as an older build does (the best alive member by the
    /// metric), so a rolling upgrade changes nothing midway. A member of protocol 3 that has
    /// not yet said where it stands (its link just came up) counts as not eligible for that
    /// moment: switching the whole order back to the metric instead could make a master hand
    /// over needlessly.
    func preferencesActive(now: Instant) -> Bool {
        guard configuration.protocolVersion >= Eligibility.protocolVersion else { return false }
        return !peers.alive(now: now).contains { membership.isMember($0.name) && $0.protocolVersion < Eligibility.protocolVersion }
    }

    /// What `name` last said of its eligibility (this node's own for its name).
    func eligibility(of member: String) -> Eligibility? {
        member == name ? eligibility : peers[member]?.eligibility
    }

    /// Since when `member` has been alive and eligible without a break, as this node saw it.
    func eligibleSince(of member: String) -> Instant? {
        if member == name { return eligibleSince }
        guard let p = peers[member], let since = p.eligibleSince else { return nil }
        return max(since, p.aliveSince)
    }

    /// Whether `member` became eligible only after its start (a check that passed again,
    /// standby turned off) or stepped down in a planned handover: such a member never takes the role from a working master by the
    /// metric, only by a higher priority.
    func regainedEligibility(_ member: String) -> Bool {
        if member == name ? handedOver : peers[member]?.handedOver == true { return true }
        guard let since = member == name ? eligibleSince : peers[member]?.eligibleSince else { return false }
        let first = member == name ? startedAt : (peers[member]?.firstHeard ?? since)
        return since > first + timing.discoveryWindow
    }

    /// Whether this node may stand for election now.
    func mayStand(now: Instant) -> Bool {
        if eligibility.witness { return false }
        return !preferencesActive(now: now) || eligibility.isEligible
    }

    /// The member every node should elect: among alive members that may be master, the
    /// highest priority, then the metric. A working master keeps the role against members of
    /// its own priority that regained their eligibility, and against a higher priority unless
    /// its own settings let it be preempted and that member has been eligible for its delay.
    public func wanted(now: Instant) -> NodeIdentity? {
        var candidates: [NodeIdentity] = isMember ? [identity] : []
        for p in peers.alive(now: now) where membership.isMember(p.name) { candidates.append(p.identity) }
        guard preferencesActive(now: now) else {
            // As an older build elects; but a witness never stands.
            return configuration.metric.best(of: candidates.filter { !(eligibility(of: $0.name)?.witness ?? false) })
        }
        let ranked = candidates.compactMap { id in eligibility(of: id.name).flatMap { $0.isEligible ? (id, $0) : nil } }
        func best(_ among: [(NodeIdentity, Eligibility)]) -> (NodeIdentity, Eligibility)? {
            among.min { Eligibility.isPreferred($0, over: $1, metric: configuration.metric) }
        }
        // A planned step-down: the old master keeps out, its chosen successor is wanted.
        if let h = activeHandover(now: now) {
            let others = ranked.filter { $0.0.name != h.from }
            return (others.first { $0.0.name == h.to } ?? best(others))?.0
        }
        guard let top = best(ranked) else { return nil }
        guard let m = currentMaster(now: now), m.name != top.0.name, let master = ranked.first(where: { $0.0.name == m.name }) else {
            return top.0
        }
        // A working master: who may take the role from it.
        if master.1.preempt {
            let ready = ranked.filter { c in
                c.1.priority > master.1.priority && (eligibleSince(of: c.0.name).map { now >= $0 + master.1.preemptDelay } ?? false)
            }
            if let preemptor = best(ready) { return preemptor.0 }
        }
        // Its own priority: the metric decides among the master and the members that were
        // eligible from their start (a newcomer better by port still takes over, as before).
        let tier = ranked.filter { $0.1.priority == master.1.priority && ($0.0.name == m.name || !regainedEligibility($0.0.name)) }
        return best(tier)?.0 ?? master.0
    }

    /// A higher-priority member waiting out the master's `--preempt-delay`, and when it may
    /// take over (nil when none waits, or the master may not be preempted).
    public func pendingPreemption(now: Instant) -> (name: String, priority: UInt8, at: Instant)? {
        guard preferencesActive(now: now), let m = currentMaster(now: now), let me = eligibility(of: m.name),
              me.isEligible, me.preempt else { return nil }
        var pending: (name: String, priority: UInt8, at: Instant)? = nil
        for p in peers.alive(now: now) where membership.isMember(p.name) && p.name != m.name {
            guard let e = p.eligibility, e.isEligible, e.priority > me.priority, let since = eligibleSince(of: p.name) else { continue }
            let at = since + me.preemptDelay
            if at > now, pending.map({ e.priority > $0.priority || (e.priority == $0.priority && at < $0.at) }) ?? true {
                pending = (p.name, e.priority, at)
            }
        }
        return pending
    }

    /// A peer said where it stands.
    mutating func onEligibility(_ e: Eligibility, from peerName: String, now: Instant) {
        guard var p = peers[peerName] else { return }
        if !e.isEligible {
            // It stepped aside: once eligible again it takes no role back by the metric.
            if p.eligibility?.isEligible == true { p.handedOver = true }
            p.eligibleSince = nil
        } else if p.eligibility?.isEligible != true {
            p.eligibleSince = now
        }
        p.eligibility = e
        peers[peerName] = p
    }

    /// This node's own eligibility changed: tell every peer at once; a master that may no
    /// longer hold the role steps down in order on this event's reconcile.
    mutating func setEligibility(_ e: Eligibility, now: Instant, into out: inout [Directive]) {
        guard e != eligibility else { return }
        if !e.isEligible {
            if eligibility.isEligible { handedOver = true }
            eligibleSince = nil
        } else if !eligibility.isEligible {
            eligibleSince = now
        }
        eligibility = e
        if configuration.protocolVersion >= Eligibility.protocolVersion { say(.eligibility(e), into: &out) }
    }

    /// Whether any alive member (this node included) may be master now.
    func anyEligibleMember(now: Instant) -> Bool {
        guard preferencesActive(now: now) else { return true }
        if isMember, eligibility.isEligible { return true }
        return peers.alive(now: now).contains { membership.isMember($0.name) && $0.eligibility?.isEligible == true }
    }
}

extension Eligibility {
    /// The protocol version that carries eligibility.
    public static let protocolVersion: UInt8 = 3
}
