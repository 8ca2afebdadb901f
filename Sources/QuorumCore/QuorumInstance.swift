/// The election state machine of one node: membership, votes, leases and roles.
///
/// It is a value type with no I/O and no clock. Every input is a call to
/// ``handle(_:now:)`` with the current instant of a clock that counts suspend; every output
/// is a list of ``Directive``s for the shell to carry out in order. The algorithm, its
/// guarantees and what it does not guarantee are in docs/protocol.md. The rules live in
/// parts, each in a file of its own:
///
/// - `PeerTable` (Peers.swift): who is linked, heard, lost or proven gone;
/// - `Membership` (Membership.swift): the list, its changes, and what a quorum is;
/// - `Lease` (Lease.swift): heartbeat counters and when a lease ends;
/// - `Announcer` (Announcer.swift): when to announce;
/// - the election (QuorumInstance+Votes.swift): candidacy, votes, promises;
/// - links and names (+Links), messages (+Messages), membership changes (+Membership),
///   roles and hooks (+Roles), and what the outside may ask (+Status).
public struct QuorumInstance: Sendable {
    public let configuration: CoreConfiguration
    public let identity: NodeIdentity
    var timing: Timing { configuration.timing }
    var name: String { identity.name }

    // MARK: Durable state

    public internal(set) var persistent: PersistentState
    var membership: Membership

    // MARK: Volatile state

    struct Promise: Sendable, Equatable {
        var name: String
        var instance: UInt64
        var epoch: UInt64
        var until: Instant
        /// `true` once the promised node was heard holding its epoch as master.
        var isMaster: Bool
        /// The cluster of this node's list when it promised (0: none known yet).
        var cluster: UInt64 = 0
    }

    struct Candidacy: Sendable {
        var epoch: UInt64
        var startedAt: Instant
        var deadline: Instant
        var votes: Set<String>
        var refusals: Set<String>
        /// The epoch was taken above the wall clock (see `candidacyNeedsWallClockEpoch`): it
        /// is good only if the candidacy wins at once, not after a stall.
        var wallClockEpoch = false
        /// The shell has written the candidate's own vote: it takes the next event only after.
        var voteOnDisk = false
    }

    struct Mastership: Sendable {
        var epoch: UInt64
        /// The stamp of this master's newest list while it is not yet known to a quorum; no
        /// further change starts until it is (one change at a time, its own list first).
        var unsettled: MembershipStamp?
        /// When the vote requests of the election were sent.
        var requestedAt: Instant
    }

    enum Afterwards: Sendable, Equatable {
        case follow
        case leave(code: Int32)
    }

    struct Resignation: Sendable {
        var epoch: UInt64
        /// The newest hook issued since stepping down: the resignation ends when it has finished.
        var hook: UInt64
        var then: Afterwards
    }

    enum State: Sendable {
        case follower
        case candidate(Candidacy)
        case master(Mastership)
        case resigning(Resignation)
        case dispatched
    }

    var state: State = .follower
    var peers: PeerTable
    var promise: Promise?
    /// The list of another cluster this node has met that outranks its own: this node's
    /// cluster joins it (see QuorumInstance+Clusters.swift).
    var outrankingCluster: MembershipList?
    /// This start has told a member that it left (see `sayLeft`): until a list of that cluster
    /// without it arrives, every member must count it out, and so does it.
    var countsItselfOut = false
    /// The list changed since the peers' `left` frames were last held against it.
    var departuresToRecall = false
    var pendingVote: (name: String, epoch: UInt64, stamp: MembershipStamp)?
    var highestEpoch: UInt64
    /// The epoch of the last master this node knew (its own included): the fencing number.
    var masterEpoch: UInt64 = 0
    var lastAnnouncedMaster: MasterClaim?
    public internal(set) var role: Role = .discovering
    let startedAt: Instant
    /// When the discovery window ends: `discoveryWindow` after the start, later when the node
    /// was not awake to listen in it (a write that stalled, a stopped process; see
    /// `listenAfterStall`).
    var discoveryEnds: Instant
    /// The instant this node last asked to be woken at.
    var requestedWake: Instant?
    var started = false
    var knowsCluster = false
    /// Whether this node, in this life, was accepted by a peer (heard a heartbeat).
    var acceptedByPeer = false
    /// The highest epoch this node had seen before this start, and whether it has since heard
    /// a master of a newer one (see voteDecision).
    let restoredEpoch: UInt64
    /// A node that started without state votes only in epochs above this (its wall-clock
    /// birth in milliseconds): it cannot know where it voted before. 0 with state.
    let epochFloor: UInt64
    /// Whether this node was ever in a cluster with a master (then `--expected-nodes` no
    /// longer holds it back).
    var knewAMaster: Bool
    var heardNewerMaster = false
    var announcer: Announcer
    var nextHeartbeat: Instant
    var lease = Lease()
    var nextHookID: UInt64 = 1
    var candidacyNotBefore: Instant
    var random: SplitMix64
    /// The wall clock given with the event being handled (see `handle`).
    var wallClockNow: Int64? = nil
    /// This node's own eligibility, and since when it has been eligible without a break
    /// (see QuorumInstance+Preferences.swift).
    public internal(set) var eligibility: Eligibility
    var eligibleSince: Instant?
    /// A planned step-down under way (see QuorumInstance+StepDown.swift).
    var handover: Handover?
    /// This node stepped aside (a planned handover, or it lost its eligibility) and has not
    /// been master since (see `regainedEligibility`).
    var handedOver = false

    var planted: PlantedHole? { configuration.plantedHole }

    // MARK: Init

    /// - Parameters:
    ///   - identity: this start's identity (a fresh `instance`, the wall-clock birth of this start).
    ///   - restored: the state persisted by an earlier start of the same node, if any.
    ///   - now: the current instant.
    ///   - seed: seeds the generator for the random back-off of failed candidacies.
    public init(configuration: CoreConfiguration, identity: NodeIdentity, restored: PersistentState?, now: Instant, seed: UInt64) {
        self.configuration = configuration
        self.identity = identity
        var persistent = restored ?? PersistentState()
        if configuration.plantedHole == .expectedNodesForgotten { persistent.seenNames = [] }
        let list = persistent.membership ?? MembershipList(epoch: 0, version: 0, members: [identity])
        membership = Membership(
            list: list, seen: Set(persistent.seenNames + [identity.name]),
            tieBreaker: configuration.tieBreaker, expectedNodes: configuration.expectedNodes, plantedNoJointQuorum: configuration.plantedHole == .tieBreakerDuringChange)
        if configuration.plantedHole == .tieBreakerBestByMetric { membership.plantedBestBy = configuration.metric }
        // Count ourselves by name with this start's identity.
        membership.updateIdentity(identity)
        knewAMaster = list.stamp != .bootstrap && configuration.plantedHole != .expectedNodesForgotten
        // Without state this node may have voted in any epoch up to now, and earlier masters
        // held epochs it cannot know: start above the wall clock's milliseconds.
        epochFloor = restored == nil && configuration.plantedHole != .lostStateEpoch ? UInt64(max(0, identity.birth)) : 0
        persistent.highestEpoch = max(persistent.highestEpoch, epochFloor)
        persistent.membership = membership.list
        persistent.seenNames = membership.seen.sorted()
        self.persistent = persistent
        highestEpoch = max(persistent.highestEpoch, persistent.votedEpoch)
        restoredEpoch = highestEpoch
        masterEpoch = list.epoch
        startedAt = now
        discoveryEnds = now + configuration.timing.discoveryWindow
        announcer = Announcer(startedAt: now, timing: configuration.timing)
        nextHeartbeat = now
        candidacyNotBefore = now
        peers = PeerTable(timing: configuration.timing, capacity: configuration.maximumPeers)
        random = SplitMix64(seed: seed)
        eligibility = configuration.eligibility
        eligibleSince = configuration.eligibility.isEligible ? now : nil
    }

    // MARK: Events

    /// Feeds one event and returns what the shell must do, in order. The one entry point.
    /// - Parameters:
    ///   - now: the host's monotonic instant (suspend included): leases and timeouts.
    ///   - wallClock: the host's wall clock (`CLOCK_REALTIME`) in milliseconds since 1970,
    ///     read for the same event: only the epochs of candidacies that cannot learn earlier
    ///     masters' epochs are taken from it. Without it, the birth plus the monotonic time
    ///     since stands in (a clock that runs fast or slow then drifts from the wall's).
    public mutating func handle(_ event: Event, now: Instant, wallClock: Int64? = nil) -> [Directive] {
        var out: [Directive] = []
        if case .dispatched = state { return out }
        wallClockNow = wallClock
        listenAfterStall(now: now)
        if !started {
            started = true
            out.append(.persist(persistent))
        }
        if case .candidate(var c) = state, !c.voteOnDisk {
            c.voteOnDisk = true
            state = .candidate(c)
        }
        switch event {
        case .tick:
            break
        case .datagram(let announce):
            onAnnounce(announce, now: now, into: &out)
        case .linkUp(let peer, let speaks):
            onLinkUp(peer, speaks: speaks, now: now, into: &out)
        case .linkDown(let peerName, let instance, let loss):
            onLinkDown(peerName, instance: instance, loss: loss, now: now, into: &out)
        case .message(let message, let from):
            onMessage(message, from: from, now: now, into: &out)
        case .hookFinished(let id):
            onHookFinished(id, now: now, into: &out)
        case .leaveRequested:
            leave(code: 0, cause: .leaving, now: now, into: &out)
        case .forgetRequested(let peerName):
            let outcome = forget(peerName, now: now, into: &out)
            if outcome == .forgotten, let m = currentMaster(now: now), m.name != name {
                out.append(.send(.forget(name: peerName), to: m.name))
            }
            out.append(.forgetAnswered(name: peerName, outcome))
        case .eligibilityChanged(let e):
            setEligibility(e, now: now, into: &out)
        case .stepDownRequested(let request):
            onStepDownRequested(request, now: now, into: &out)
        }
        reconcile(now: now, into: &out)
        return out
    }

    // MARK: Reconcile

    /// Brings everything time-dependent up to date, then decides: step down, campaign,
    /// vote, change role, send heartbeats and announcements, reconnect, and when to wake up.
    mutating func reconcile(now: Instant, into out: inout [Directive]) {
        if case .dispatched = state { return }

        for lostName in peers.markSilent(now: now) {
            out.append(.notice(.peerLost(name: lostName, evidence: "silent for \(timing.electionTimeout)")))
        }
        if let pr = promise, pr.until <= now { releasePromise(now: now, into: &out) }
        recallDepartures(now: now, into: &out)
        if handover != nil, activeHandover(now: now) == nil { handover = nil }

        // A node has settled once its discovery window is over: until then it may not have
        // linked with every peer yet, so it neither judges its quorum (no `no-quorum`, no
        // dispatch) nor, unless it has already heard a master, campaigns. A newcomer better
        // than the master it heard takes over without waiting.
        let settled = now >= discoveryEnds
        var quorate = isQuorate(now: now)

        // The master keeps its role only within its lease, with a quorum, and while it is the best.
        if case .master = state {
            if now >= leaseEnd(now: now) {
                stepDown(cause: .leaseExpired, now: now, into: &out)
            } else if !quorate {
                stepDown(cause: .quorumLost, now: now, into: &out)
            } else if outrankingCluster != nil {
                stepDown(cause: .superseded, now: now, into: &out)
            } else if wanted(now: now)?.name != name {
                stepDown(cause: .handover, now: now, into: &out)
            } else {
                advanceMembership(now: now, into: &out)
                quorate = isQuorate(now: now)
            }
        }

        // The minority rule.
        if configuration.onQuorumLoss == .dispatch, settled, !quorate, heldEpoch == nil {
            leave(code: 3, cause: .quorumLost, now: now, into: &out)
            return
        }

        joinOutrankingCluster(now: now, into: &out)
        quorate = isQuorate(now: now)
        resolveCandidacy(now: now, quorate: quorate, into: &out)
        if case .follower = state, outrankingCluster == nil, settled || knowsCluster, now >= candidacyNotBefore, isMember, expectedNodesSeen, quorate, mayStand(now: now),
           promise.map({ $0.until <= now }) ?? true, wanted(now: now)?.name == name {
            startCandidacy(now: now, into: &out)
            resolveCandidacy(now: now, quorate: quorate, into: &out)
        }
        answerPendingVote(now: now, into: &out)

        // The role the outside sees, and its hook.
        updateRole(now: now, settled: settled, into: &out)

        // Tell everyone about a new master once.
        let master = currentMaster(now: now)
        if let m = master, m != lastAnnouncedMaster {
            out.append(.notice(.masterChanged(master: m.name, epoch: m.epoch)))
        }
        lastAnnouncedMaster = master

        if now >= nextHeartbeat { sendHeartbeats(now: now, into: &out) }
        if announcer.isDue(now: now) {
            out.append(.broadcast(Announce(cluster: configuration.cluster, identity: identity)))
        }
        for peer in peers.dueForReconnect(now: now) { out.append(.connect(peer)) }
        let wake = nextWakeUp(now: now)
        requestedWake = wake
        out.append(.wakeUp(at: wake))
    }

    /// A node woken well after the instant it asked for was not running in between (its
    /// first write stalled, the process was stopped): frames and link events have queued up
    /// unseen. If that happened before its discovery window was over, the window has not been
    /// listened to: it goes on for as long again as the node slept (at most a whole window),
    /// so the queued input is taken before the node may find itself alone and found a
    /// cluster of one beside a master it could reach (seed 45043).
    mutating func listenAfterStall(now: Instant) {
        guard configuration.plantedHole != .stalledDiscovery,
              let wake = requestedWake, wake <= discoveryEnds, now - wake > timing.heartbeatInterval else { return }
        discoveryEnds = max(discoveryEnds, now + min(now - wake, timing.discoveryWindow))
    }

    func nextWakeUp(now: Instant) -> Instant {
        var t = min(nextHeartbeat, announcer.next)
        func consider(_ x: Instant) { if x > now { t = min(t, x) } }
        consider(discoveryEnds)
        consider(startedAt + timing.discoveryWindow + timing.electionTimeout)
        if pendingVote != nil { consider(startedAt + timing.electionTimeout) }
        consider(candidacyNotBefore)
        if let pr = promise { consider(pr.until) }
        if let p = peers.nextChange(after: now) { consider(p) }
        if let preemption = pendingPreemption(now: now) { consider(preemption.at) }
        if let h = handover { consider(h.until) }
        switch state {
        case .candidate(let c):
            consider(c.deadline)
            // Won by this node's own vote: decide on the next event, after the vote is on disk.
            if membership.isQuorum(c.votes) { t = min(t, now) }
        case .master: consider(leaseEnd(now: now))
        default: break
        }
        return max(t, now + .microseconds(100))
    }

    // MARK: Heartbeats

    func heartbeat(for peer: String, now: Instant) -> Heartbeat {
        Heartbeat(
            epoch: max(highestEpoch, persistent.votedEpoch), role: role, holding: heldEpoch,
            following: currentMaster(now: now), sequence: lease.sequence, echo: peers[peer]?.receivedSequence ?? 0,
            membership: membership.stamp)
    }

    mutating func sendHeartbeats(now: Instant, into out: inout [Directive]) {
        _ = lease.nextHeartbeat(now: now)
        // The master and its followers exchange a heartbeat every interval (its lease, their
        // promises). Two followers only need to know the other is alive: every other interval
        // is enough, which saves a third of an idle cluster's traffic and wake-ups.
        let master = currentMaster(now: now)?.name
        let everyone = heldEpoch != nil || master == nil || lease.sequence % 2 == 0
        let sendsEligibility = configuration.protocolVersion >= Eligibility.protocolVersion
        // Said again every 25 heartbeat rounds (a few seconds): a view of this node that went
        // stale with a frame lost on a broken link heals by itself.
        let refresh = lease.sequence % Self.eligibilityRefresh == 0
        for p in peers.ordered where p.linkUp {
            if sendsEligibility, p.heardOnLink, !p.eligibilitySent || refresh {
                out.append(.send(.eligibility(eligibility), to: p.name))
                peers[p.name]?.eligibilitySent = true
            }
            guard everyone || p.name == master || p.following?.name == nil || p.following?.name == p.name else { continue }
            out.append(.send(.heartbeat(heartbeat(for: p.name, now: now)), to: p.name))
        }
        nextHeartbeat = now + timing.heartbeatInterval
    }

    static let eligibilityRefresh: UInt64 = 25

    func say(_ message: Message, into out: inout [Directive]) {
        for p in peers.ordered where p.linkUp { out.append(.send(message, to: p.name)) }
    }
}
