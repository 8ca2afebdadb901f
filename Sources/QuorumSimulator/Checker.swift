import QuorumCore

/// One process: a physical slot (a host; a voter's lineage across restarts and wiped disks)
/// and the instance of one start on it. Two processes may share a name.
public struct ProcessID: Hashable, Sendable, CustomStringConvertible {
    public var slot: Int
    public var name: String
    public var instance: UInt64

    public init(slot: Int, name: String, instance: UInt64) {
        self.slot = slot
        self.name = name
        self.instance = instance
    }

    public var description: String { "\(name)#\(String(instance, radix: 16))@slot\(slot)" }
}

/// The safety rules, judged from the global view: global simulated time and what every
/// process did, never a node's own opinion of what others did.
public struct SafetyChecker: Sendable {
    public enum Rule: String, Sendable, CaseIterable {
        case oneMasterPerEpoch = "two masters in one epoch"
        case twoMastersAtOnce = "two masters at once"
        case epochDecreased = "a process's epoch decreased"
        case staleMasterEpoch = "master epoch not above an earlier master's"
        case doubleVote = "two votes in one epoch"
        case quorumNotReal = "master without a real quorum"
        case hookOutsideLease = "master hook outside the lease"
        case handoverOverlap = "planned handover overlaps"
        case needlessStepDown = "a master stepped down with a quorum around it"
        case agreement = "no agreement after a heal"
        case liveness = "liveness"
    }

    public struct Finding: Sendable, CustomStringConvertible {
        public var time: Instant
        public var rule: Rule
        public var detail: String
        public var description: String { "\(time): \(rule.rawValue): \(detail)" }
    }

    /// A process that holds the master role by its own clock at the time of an observation.
    public struct MasterView: Sendable {
        public var process: ProcessID
        public var epoch: UInt64
        /// Its membership (`memberNames`).
        public var members: [String]
        /// The tie-breaker's anchor: the first member of the list it holds.
        public var anchor: String?
        /// A brand-new cluster of one that never met the others (a node without state that
        /// heard no one): it may be master beside this cluster's master, and later masters of
        /// this cluster need not exceed its epoch; its own epoch must exceed every earlier one.
        public var loneNewCluster = false
        /// The cluster its list belongs to (`MembershipList.cluster`; 0: none known).
        public var cluster: UInt64 = 0

        public init(process: ProcessID, epoch: UInt64, members: [String], anchor: String?, cluster: UInt64 = 0) {
            self.process = process
            self.epoch = epoch
            self.members = members
            self.anchor = anchor
            self.cluster = cluster
        }
    }

    public let tieBreaker: Bool
    /// How far apart two hosts' wall clocks may read at one instant: epochs taken from the
    /// wall clock (docs/protocol.md, 12) order two candidacies only when they were taken
    /// further apart than this (plus the millisecond they are counted in).
    public var wallClockSpread: Duration = .zero
    public private(set) var findings: [Finding] = []

    /// Who was master of each epoch.
    private var epochMaster: [UInt64: ProcessID] = [:]
    /// A master tenure: who, of which epoch and cluster, since when, when its epoch was taken
    /// (its candidacy began), and whether it began as a new cluster apart.
    private struct Tenure {
        var process: ProcessID
        var epoch: UInt64
        var since: Instant
        var lone: Bool
        var cluster: UInt64
        var taken: Instant
    }
    /// Tenures: open ones (by process) and every one that began, in order.
    private var open: [ProcessID: Tenure] = [:]
    private var history: [Tenure] = []
    /// When each process took each epoch for a candidacy: instance → epoch → global time.
    private var taken: [UInt64: [UInt64: Instant]] = [:]
    /// The last epoch each process reported (status or hook).
    private var reported: [ProcessID: (epoch: UInt64, what: String)] = [:]
    /// Every granted vote: physical slot → epoch → candidate.
    private var grants: [Int: [UInt64: String]] = [:]
    /// Epoch → candidate → names of the granters (a name counts once).
    private var granters: [UInt64: [String: Set<String>]] = [:]

    public init(tieBreaker: Bool) { self.tieBreaker = tieBreaker }

    public var isClean: Bool { findings.isEmpty }

    /// `true` while `p`'s tenure as master of `epoch` is open.
    public func isOpen(_ p: ProcessID, epoch: UInt64) -> Bool { open[p]?.epoch == epoch }

    /// `true` while `p`'s open tenure began as a brand-new cluster of one.
    public func isLoneTenure(_ p: ProcessID) -> Bool { open[p]?.lone ?? false }
    /// Whether the process's last tenure (open or ended) began as a brand-new cluster of one.
    public func lastTenureWasLone(_ p: ProcessID) -> Bool { history.last { $0.process == p }?.lone ?? false }

    /// A process took `epoch` for a candidacy at global time `t` (before its vote was written).
    public mutating func epochTaken(at t: Instant, by p: ProcessID, epoch: UInt64) {
        taken[p.instance, default: [:]][epoch] = t
    }

    /// Whether tenure `t` need not hold a larger epoch than the earlier tenure `e`: the two
    /// belong to clusters that never shared what they knew of epochs.
    /// - A cluster founded apart (its first tenure was a new cluster of one that met no one:
    ///   a node without state, one that left, a newcomer behind a partition) took its first
    ///   epoch from the wall clock, above every epoch taken before, elsewhere; one taken
    ///   elsewhere after it (less the wall clocks' spread), it cannot know (seeds 14890,
    ///   45158, 57958, 77430, 92116).
    /// - Any other cluster need not exceed the epochs of a cluster founded apart, which it
    ///   never learns: that one's epochs are judged by the rule above (seed 38310).
    /// Within one cluster, and between clusters none of which was founded apart, every later
    /// master exceeds every earlier one.
    private func mayBeBelow(_ t: Tenure, _ e: Tenure) -> Bool {
        guard t.cluster != e.cluster, t.cluster != 0, e.cluster != 0 else { return false }
        let founding = history.first { $0.cluster == t.cluster } ?? t
        if founding.lone { return e.taken > founding.taken - wallClockSpread - .milliseconds(1) }
        return history.first { $0.cluster == e.cluster }?.lone ?? false
    }

    /// The latest earlier tenure whose epoch `t`'s should exceed and does not.
    private func staleAgainst(_ t: Tenure, before time: Instant) -> Tenure? {
        history.last { e in
            e.epoch >= t.epoch && !(e.process == t.process && e.epoch == t.epoch) && e.since <= time && !mayBeBelow(t, e)
        }
    }

    public mutating func record(_ rule: Rule, at time: Instant, _ detail: String) {
        findings.append(Finding(time: time, rule: rule, detail: detail))
    }

    /// A voter granted (or persisted) its vote in `epoch` for `candidate`; a candidate's own
    /// vote counts too. One physical slot never votes for two candidates in one epoch.
    public mutating func voteGranted(at t: Instant, by voter: ProcessID, epoch: UInt64, candidate: String) {
        if let earlier = grants[voter.slot]?[epoch], earlier != candidate {
            record(.doubleVote, at: t, "slot \(voter.slot) (\(voter)) voted for \(earlier) and for \(candidate) in epoch \(epoch)")
        }
        grants[voter.slot, default: [:]][epoch] = candidate
        granters[epoch, default: [:]][candidate, default: []].insert(voter.name)
    }

    /// A process reported an epoch (its status, or a hook's): it never decreases.
    public mutating func epochReported(at t: Instant, by p: ProcessID, epoch: UInt64, what: String) {
        if let last = reported[p], epoch < last.epoch {
            record(.epochDecreased, at: t, "\(p) reported epoch \(epoch) (\(what)) after \(last.epoch) (\(last.what))")
        }
        if reported[p].map({ epoch >= $0.epoch }) ?? true { reported[p] = (epoch, what) }
    }

    /// Every process that holds the master role by its own clock at global time `t`
    /// (called after every step). Opens and closes tenures and checks them.
    public mutating func observeMasters(at t: Instant, _ masters: [MasterView]) {
        let now = Set(masters.map(\.process))
        for p in open.keys where !now.contains(p) { open[p] = nil }
        for m in masters {
            if let o = open[m.process], o.epoch == m.epoch { continue }
            beginTenure(m, at: t)
        }
        // A tenure that began as a brand-new cluster of one stays apart until it ends.
        let joined = masters.filter { !(open[$0.process]?.lone ?? $0.loneNewCluster) }
        if joined.count > 1 {
            let who = joined.map { "\($0.process) (epoch \($0.epoch), since \(open[$0.process]?.since.description ?? "?"))" }
            record(.twoMastersAtOnce, at: t, who.joined(separator: " and "))
        }
    }

    private mutating func beginTenure(_ m: MasterView, at t: Instant) {
        if let other = epochMaster[m.epoch], other != m.process {
            record(.oneMasterPerEpoch, at: t, "\(other) and \(m.process) both master of epoch \(m.epoch)")
        }
        let tenure = Tenure(process: m.process, epoch: m.epoch, since: t, lone: m.loneNewCluster, cluster: m.cluster,
                            taken: taken[m.process.instance]?[m.epoch] ?? t)
        if let earlier = staleAgainst(tenure, before: t) {
            record(.staleMasterEpoch, at: t, "\(m.process) became master of epoch \(m.epoch) after \(earlier.process) was master of epoch \(earlier.epoch) (since \(earlier.since))")
        }
        // The quorum that elected it, from the global record of votes. A tenure that comes
        // back in the same epoch (a lease that lapsed and was renewed) was elected once.
        let again = history.contains { $0.process == m.process && $0.epoch == m.epoch }
        let voters = (granters[m.epoch]?[m.process.name] ?? []).union([m.process.name])
        let members = Set(m.members)
        let count = members.filter { voters.contains($0) }.count
        let tie = tieBreaker && count * 2 == members.count && m.anchor.map { voters.contains($0) && members.contains($0) } == true
        if !again, count * 2 <= members.count, !tie {
            record(.quorumNotReal, at: t, "\(m.process) is master of epoch \(m.epoch) with the votes of \(voters.intersection(members).sorted()) of its \(members.count) members \(m.members)")
        }
        epochMaster[m.epoch] = m.process
        open[m.process] = tenure
        history.append(tenure)
    }

    /// A master hook starts. `holdsLease`: the process is master of the hook's epoch by its
    /// own clock; `otherMasters`: every other process master at this global time;
    /// `steppingDown`: processes whose planned step-down hook still runs.
    /// `cluster` and `lone`: the cluster of its list and whether it is a new cluster apart,
    /// for a tenure the checker has not yet seen begin (the hook starts within the step that
    /// elects it).
    public mutating func masterHookStarted(at t: Instant, by p: ProcessID, epoch: UInt64, holdsLease: Bool, otherMasters: [ProcessID], steppingDown: [ProcessID],
                                           cluster: UInt64 = 0, lone: Bool = false) {
        if !holdsLease {
            record(.hookOutsideLease, at: t, "\(p) starts its master hook for epoch \(epoch) without holding that epoch's lease")
        }
        if !otherMasters.isEmpty {
            record(.hookOutsideLease, at: t, "\(p) starts its master hook for epoch \(epoch) while \(otherMasters.map(\.description).joined(separator: ", ")) is master")
        }
        // Judged as its tenure: by that tenure's cluster and when its epoch was taken.
        let tenure = history.last { $0.process == p && $0.epoch == epoch }
            ?? Tenure(process: p, epoch: epoch, since: t, lone: lone, cluster: cluster, taken: taken[p.instance]?[epoch] ?? t)
        if let earlier = staleAgainst(tenure, before: t) {
            record(.staleMasterEpoch, at: t, "\(p) starts a master hook for epoch \(epoch) after \(earlier.process) was master of epoch \(earlier.epoch)")
        }
        for s in steppingDown where s != p {
            record(.handoverOverlap, at: t, "\(p) starts its master hook for epoch \(epoch) while \(s)'s step-down hook still runs")
        }
    }
}
