/// What the outside may ask a node: its role, its master, its quorum, its peers.
extension QuorumInstance {
    /// `true` while this node is master *and* its lease has not ended at `now`.
    public func isMaster(now: Instant) -> Bool {
        guard case .master = state else { return false }
        return now < leaseEnd(now: now)
    }

    /// `true` when the shell may start this queued hook now: a master hook only while this
    /// node is master of the hook's epoch within its lease.
    public func mayStartHook(_ run: HookRun, now: Instant) -> Bool {
        guard run.role == .master else { return true }
        return isMaster(now: now) && heldEpoch == run.epoch
    }

    /// The hook as it starts now: it tells the epoch and master of now, not of when it was
    /// queued, so a hook never sees an older epoch than `status` showed before it started.
    public func preparedHook(_ run: HookRun, now: Instant) -> HookRun {
        guard run.role != .master else { return run }
        var ready = run
        ready.epoch = max(run.epoch, masterEpoch)
        if run.role == .slave, let m = currentMaster(now: now) { ready.master = m.name }
        return ready
    }

    /// The epoch this node holds as master (or is stepping down from), if any.
    public var heldEpoch: UInt64? {
        switch state {
        case .master(let m): m.epoch
        case .resigning(let r): r.epoch
        default: nil
        }
    }

    /// The master this node follows or is, if any.
    public func currentMaster(now: Instant) -> MasterClaim? {
        if case .master(let m) = state { return MasterClaim(name: name, instance: identity.instance, epoch: m.epoch) }
        if let p = promise, p.isMaster, p.until > now {
            return MasterClaim(name: p.name, instance: p.instance, epoch: p.epoch)
        }
        return nil
    }

    public var isMember: Bool { membership.isMember(name) }
    public var membershipStamp: MembershipStamp { membership.stamp }
    /// The list this node holds (its cluster, stamp and members).
    public var membershipList: MembershipList { membership.list }
    public var memberNames: [String] { membership.members.map(\.name) }
    /// The epoch of the last master this node knew, its own included: what `status` reports
    /// as `epoch` and hooks as `QUORUM_EPOCH` (cheap; `status(now:)` computes everything).
    public var fencingEpoch: UInt64 { masterEpoch }

    /// When this master's lease ends as things stand (`nil` when it is not master).
    public func leaseEnds(now: Instant) -> Instant? {
        guard case .master = state else { return nil }
        return leaseEnd(now: now)
    }

    /// `true` while this master's newest list is not yet known to a quorum.
    public var isChangingMembership: Bool {
        if case .master(let m) = state { return m.unsettled != nil }
        return false
    }
    /// The members before an unfinished change (a joint list), if one is under way.
    public var previousMemberNames: [String]? { membership.previous?.map(\.name) }

    public struct Status: Sendable, Equatable {
        public var identity: NodeIdentity
        public var cluster: String
        public var role: Role
        public var master: String?
        public var masterIdentity: NodeIdentity?
        public var quorate: Bool
        public var epoch: UInt64
        public var clusterSize: Int
        public var majority: Int
        public var connected: Int
        public var lost: Int
        public var metric: Metric
        public var isMember: Bool
        public var membership: MembershipStamp
        /// The highest protocol version this node speaks.
        public var protocolVersion: UInt8 = WireFormat.version
        /// The version every member speaks: this node's, or lower while a member speaks an
        /// older one or has not been heard in this process's life (a feature that changes who
        /// may be master is active only from its version on).
        public var clusterProtocolVersion: UInt8 = WireFormat.version
        /// The members that hold `clusterProtocolVersion` below `protocolVersion`, by name.
        public var protocolBehind: [String] = []
        /// Why there is no master; nil when there is one.
        public var noMasterReason: NoMasterReason? = nil
        /// This node's own eligibility, and why it may not be master (empty when it may).
        public var eligibility = Eligibility()
        public var ineligibleReasons: [IneligibleReason] { eligibility.ineligibleReasons }
        /// Whether priorities, standby, checks and witnesses count (every alive member
        /// speaks protocol 3 and has said where it stands).
        public var preferencesActive = false
        /// A member of higher priority waiting out the master's preempt delay.
        public var pendingPreemption: Preemption? = nil
    }

    /// A member of higher priority that takes the role from the master once `after` has passed.
    public struct Preemption: Sendable, Equatable {
        public var name: String
        public var priority: UInt8
        public var after: Duration
    }

    public enum PeerState: String, Sendable, Equatable {
        case connected, lost, dispatched
    }

    public struct PeerStatus: Sendable, Equatable {
        public var identity: NodeIdentity
        public var state: PeerState
        public var isMember: Bool
        /// Time since the peer was last heard, if it was heard in this process's life.
        public var silence: Duration?
        /// The protocol version of the link to it, if it was linked in this process's life.
        public var protocolVersion: UInt8? = nil
        /// What it last said of its eligibility (protocol 3), if anything.
        public var eligibility: Eligibility? = nil
    }

    /// A snapshot for `quorumctl status`. Call `handle(.tick, now:)` first so that an ended
    /// lease or a silent peer is accounted for.
    public func status(now: Instant) -> Status {
        let master = currentMaster(now: now)
        let masterIdentity: NodeIdentity? = master.flatMap { m in
            m.name == name ? identity : peers[m.name]?.identity
        }
        let members = membership.members
        let connectedCount = peers.alive(now: now).count
        // Lost: members not alive, heard from in this process's life or known only from the membership.
        let lostCount = members.filter { $0.name != name && !peers.isAlive($0.name, now: now) }.count
        let quorate = isQuorate(now: now)
        return Status(
            identity: identity, cluster: configuration.cluster, role: role, master: master?.name,
            masterIdentity: masterIdentity, quorate: quorate, epoch: masterEpoch, clusterSize: members.count,
            majority: members.count / 2 + 1, connected: connectedCount, lost: lostCount, metric: configuration.metric,
            isMember: isMember, membership: membership.stamp, protocolVersion: configuration.protocolVersion,
            clusterProtocolVersion: clusterProtocolVersion, protocolBehind: protocolBehind,
            noMasterReason: master == nil ? noMasterReason(quorate: quorate, now: now) : nil,
            eligibility: eligibility, preferencesActive: preferencesActive(now: now),
            pendingPreemption: pendingPreemption(now: now).map { Preemption(name: $0.name, priority: $0.priority, after: $0.at - now) })
    }

    /// Why this node has no master, the most fundamental cause first.
    func noMasterReason(quorate: Bool, now: Instant) -> NoMasterReason {
        switch state {
        case .dispatched: return .dispatched
        // Stepping down with its quorum around it is a handover; without, the quorum is why.
        case .resigning where quorate: return .handover
        default: break
        }
        if role == .dispatched { return .dispatched }
        if activeHandover(now: now) != nil { return .handover }
        // Before the first master, waiting for the nodes expected says more than the quorum
        // (which --expected-nodes also raises to a majority of them).
        if !expectedNodesSeen { return .expectedNodesNotSeen }
        if !quorate { return .noQuorum }
        if !isMember { return .notAdmitted }
        if !anyEligibleMember(now: now) { return .noEligibleMember }
        if eligibility.witness, !preferencesActive(now: now), wanted(now: now) == nil { return .featuresInactive }
        return .electing
    }

    /// The members (other than this node) whose link speaks less than this node does, or who
    /// were not linked in this process's life.
    var protocolBehind: [String] {
        membership.members.filter { m in
            m.name != name && (peers[m.name]?.protocolVersion ?? WireFormat.lowestVersion) < configuration.protocolVersion
        }.map(\.name).sorted()
    }

    /// The protocol version every member speaks (see ``Status/clusterProtocolVersion``).
    var clusterProtocolVersion: UInt8 {
        membership.members.reduce(configuration.protocolVersion) { lowest, m in
            m.name == name ? lowest : min(lowest, peers[m.name]?.protocolVersion ?? WireFormat.lowestVersion)
        }
    }

    public func peerStatuses(now: Instant) -> [PeerStatus] {
        var result: [PeerStatus] = peers.ordered.map { p in
            PeerStatus(identity: p.identity, state: peers.isAlive(p, now: now) ? .connected : .lost,
                       isMember: membership.isMember(p.name), silence: now - p.lastHeard, protocolVersion: p.protocolVersion,
                       eligibility: p.eligibility)
        }
        // Members we know only from the list (never heard in this process's life).
        for m in membership.members where m.name != name && peers[m.name] == nil {
            result.append(PeerStatus(identity: m, state: .lost, isMember: true, silence: nil, protocolVersion: nil))
        }
        for d in peers.dispatched.values where peers[d.name] == nil {
            result.append(PeerStatus(identity: d, state: .dispatched, isMember: false, silence: nil, protocolVersion: nil))
        }
        return result.sorted { $0.identity.name.utf8.lexicographicallyPrecedes($1.identity.name.utf8) }
    }

    /// A one-line summary of the internal state, for traces and debugging.
    public func debugSummary(now: Instant) -> String {
        let stateText: String
        switch state {
        case .follower: stateText = "follower"
        case .candidate(let c): stateText = "candidate(\(c.epoch), votes \(c.votes.sorted()), refusals \(c.refusals.sorted()))"
        case .master(let m): stateText = "master(\(m.epoch), lease until \(leaseEnd(now: now)), unsettled \(m.unsettled.map { "\($0)" } ?? "-"))"
        case .resigning(let r): stateText = "resigning(\(r.epoch), hook \(r.hook), \(r.then))"
        case .dispatched: stateText = "dispatched"
        }
        let promiseText = promise.map { "\($0.name)@\($0.epoch) until \($0.until)\($0.isMaster ? " master" : "")" } ?? "none"
        let alivePeers = peers.alive(now: now).map(\.name)
        let previous = membership.previous.map { " previous \($0.map(\.name))" } ?? ""
        return "\(name) \(role.rawValue) \(stateText) promise=\(promiseText) pending=\(pendingVote.map { "\($0.name)@\($0.epoch)" } ?? "none") voted=\(persistent.votedFor ?? "-")@\(persistent.votedEpoch) membership=\(membership.stamp)\(membership.members.map(\.name))\(previous) alive=\(alivePeers) wanted=\(wanted(now: now)?.name ?? "none")"
    }

    // MARK: Quorum and lease

    /// This node and every alive peer.
    func aliveNames(now: Instant) -> Set<String> {
        Set([name] + peers.alive(now: now).map(\.name))
    }

    func isQuorate(now: Instant) -> Bool { membership.isQuorum(aliveNames(now: now)) }

    var expectedNodesSeen: Bool {
        guard let n = configuration.expectedNodes, !knewAMaster else { return true }
        return membership.seen.count >= n
    }

    /// When this master's lease ends (`now` when it has none).
    func leaseEnd(now: Instant) -> Instant {
        guard case .master = state else { return now }
        return leaseBacked(now: now)
    }

    /// When a lease backed by the acknowledgements (and votes) heard so far ends.
    func leaseBacked(now: Instant) -> Instant {
        var acks: [String: Instant] = [:]
        for p in peers.ordered { if let t = p.acknowledgedAt { acks[p.name] = t } }
        if planted == .tieBreakerBlink {
            let members = membership.members
            return Lease.plantedBlinkingEnd(self: name, acknowledgements: acks, members: members, now: now, duration: timing.leaseDuration,
                                            tieBreakerHalf: { membership.isPlainQuorum($0, of: members) }) ?? now
        }
        return Lease.end(self: name, acknowledgements: acks, now: now, duration: timing.leaseDuration,
                         blocks: { membership.blocksElections($0) }) ?? now
    }
}
