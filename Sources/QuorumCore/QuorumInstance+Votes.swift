/// The election: candidacies, votes and the promises that make leases safe.
extension QuorumInstance {
    enum VoteDecision: Equatable {
        case grant
        case `defer`(reason: String)
        /// `left`: the candidate stands on a list this node left; say so again.
        case refuse(sendList: Bool, left: Departure? = nil)
    }

    mutating func onVoteRequest(epoch: UInt64, from candidate: String, stamp: MembershipStamp, now: Instant, into out: inout [Directive]) {
        highestEpoch = max(highestEpoch, epoch)
        switch voteDecision(candidate: candidate, epoch: epoch, stamp: stamp, now: now) {
        case .grant:
            grant(candidate, epoch: epoch, now: now, into: &out)
        case .defer(let reason):
            if pendingVote == nil || pendingVote!.epoch <= epoch {
                pendingVote = (candidate, epoch, stamp)
                out.append(.notice(.voteDeferred(for: candidate, epoch: epoch, reason: reason)))
            }
        case .refuse(let sendList, let left):
            out.append(.send(.voteReply(epoch: max(epoch, persistent.votedEpoch, highestEpoch), granted: false), to: candidate))
            if sendList { sendListIfNeeded(to: candidate, again: true, into: &out) }
            if let left { sayLeft(left, through: stamp, to: candidate, into: &out) }
        }
    }

    func voteDecision(candidate: String, epoch: UInt64, stamp: MembershipStamp, now: Instant) -> VoteDecision {
        guard let c = peers[candidate], peers.isAlive(c, now: now) else { return .refuse(sendList: false) }
        if case .dispatched = state { return .refuse(sendList: false) }
        if heldEpoch != nil { return .refuse(sendList: false) }
        if case .candidate = state { return .refuse(sendList: false) }
        // Without state, this node may already have voted in any epoch up to its floor.
        if epoch <= epochFloor { return .refuse(sendList: false) }
        if epoch < persistent.votedEpoch { return .refuse(sendList: false) }
        if epoch == persistent.votedEpoch {
            return persistent.votedFor == candidate ? .grant : .refuse(sendList: false)
        }
        // A candidate standing on a list older than the one this node left: never a vote
        // there. Its list not seen yet, an older stamp is enough.
        if let d = persistent.departure, stamp != .bootstrap, stamp < d.stamp,
           peers[candidate]?.list.map({ d.covers($0, naming: name) }) ?? true {
            return .refuse(sendList: false, left: d)
        }
        guard membership.isMember(candidate) else { return .refuse(sendList: true) }
        // This node's cluster is dissolving into one that outranks it.
        if outrankingCluster != nil { return .refuse(sendList: false) }
        if stamp < membership.stamp { return .refuse(sendList: true) }
        guard expectedNodesSeen else { return .refuse(sendList: false) }
        // Still promised to a live master (or to another candidate): answer once that ends.
        // The promise and the master's liveness end together when the master falls silent,
        // so the candidate usually waits only for the difference in arrival times.
        if let pr = promise, pr.until > now, pr.name != candidate {
            return .defer(reason: pr.isMaster ? "it still hears master \(pr.name)" : "it promised \(pr.name) its vote")
        }
        // A promise made before a crash lives only in memory: a restarted node keeps quiet
        // until any promise its old self made has ended — or until it has heard a master of an
        // epoch newer than any its old self saw: that master was elected without this node's
        // vote, so every lease its old promises backed had ended by then.
        if now < startedAt + timing.electionTimeout && !heardNewerMaster {
            return .defer(reason: "it started less than an election timeout ago")
        }
        guard wanted(now: now)?.name == candidate else { return .refuse(sendList: false) }
        return .grant
    }

    mutating func answerPendingVote(now: Instant, into out: inout [Directive]) {
        guard let pv = pendingVote else { return }
        if pv.epoch < persistent.votedEpoch || peers[pv.name] == nil {
            pendingVote = nil
        } else if case .defer = voteDecision(candidate: pv.name, epoch: pv.epoch, stamp: pv.stamp, now: now) {
            // still held back
        } else {
            pendingVote = nil
            onVoteRequest(epoch: pv.epoch, from: pv.name, stamp: pv.stamp, now: now, into: &out)
        }
    }

    mutating func grant(_ candidate: String, epoch: UInt64, now: Instant, into out: inout [Directive]) {
        pendingVote = nil
        if persistent.votedEpoch != epoch || persistent.votedFor != candidate {
            persistent.votedEpoch = epoch
            persistent.votedFor = candidate
            persistent.highestEpoch = max(highestEpoch, epoch)
            out.append(.persist(persistent))
            out.append(.notice(.voted(for: candidate, epoch: epoch)))
        }
        let instance = peers[candidate]?.identity.instance ?? 0
        // The promise that makes leases safe: no other vote for `electionTimeout`.
        promise = Promise(name: candidate, instance: instance, epoch: epoch, until: now + timing.electionTimeout, isMaster: false, cluster: membership.list.cluster)
        // A founding vote carries the nodes this voter has seen, ahead of it on the link.
        if membership.stamp == .bootstrap { out.append(.send(.members(membership.list), to: candidate)) }
        out.append(.send(.voteReply(epoch: epoch, granted: true), to: candidate))
    }

    mutating func onVoteReply(epoch: UInt64, granted: Bool, from: String, now: Instant, into out: inout [Directive]) {
        if case .master(let m) = state, granted, epoch == m.epoch, peers[from]?.acknowledgedAt == nil {
            // A vote that arrives after the election was won is still a promise, made after the request.
            let acknowledged = voteAcknowledgement(from: from, requestedAt: m.requestedAt)
            peers[from]?.acknowledgedAt = acknowledged
            return
        }
        guard case .candidate(var c) = state else {
            highestEpoch = max(highestEpoch, epoch)
            return
        }
        if granted, epoch == c.epoch {
            c.votes.insert(from)
            let acknowledged = voteAcknowledgement(from: from, requestedAt: c.startedAt)
            peers[from]?.acknowledgedAt = acknowledged
        } else if !granted {
            highestEpoch = max(highestEpoch, epoch)
            c.refusals.insert(from)
        }
        state = .candidate(c)
    }

    /// What a granted vote proves for the lease: the voter promised from the moment it
    /// granted, which is after our request went out and after it received every heartbeat it
    /// echoed before its reply (frames on a link arrive in order). A vote held back by an
    /// older promise is granted long after the request; the echo keeps the lease fresh then.
    func voteAcknowledgement(from peer: String, requestedAt: Instant) -> Instant {
        guard let echoed = peers[peer]?.echoed, let sent = lease.sendTime(of: echoed) else { return requestedAt }
        return max(requestedAt, sent)
    }

    /// The wall clock now, in milliseconds: the shell's reading for this event, else this
    /// start's birth and the monotonic time since.
    func wallClockMilliseconds(now: Instant) -> UInt64 {
        UInt64(max(0, wallClockNow ?? (identity.birth &+ (now - startedAt).nanosecondsClamped / 1_000_000)))
    }

    /// A count of votes that no earlier master's quorum need share a member with — a new list
    /// of a node that has known epochs before (it left a cluster), or a list that leans on an
    /// operator's `forget` — cannot learn the epochs other masters held since: its epoch
    /// starts above the wall clock's milliseconds, like a node without state
    /// (docs/protocol.md, "Epochs").
    var candidacyNeedsWallClockEpoch: Bool {
        // (A node that started without state counts too: its floor is its birth, and a
        // suspend or a long wait since may have let other masters take higher epochs.)
        (membership.stamp == .bootstrap && highestEpoch > 0) || membership.departed.values.contains(0) || epochFloor > 0
    }

    mutating func startCandidacy(now: Instant, into out: inout [Directive]) {
        let wallFloor = candidacyNeedsWallClockEpoch && planted != .lostStateEpoch ? wallClockMilliseconds(now: now) : 0
        let epoch = max(highestEpoch, persistent.votedEpoch, epochFloor, wallFloor) + 1
        highestEpoch = epoch
        persistent.votedEpoch = epoch
        persistent.votedFor = name
        persistent.highestEpoch = epoch
        out.append(.persist(persistent))
        // A new term: only this candidacy's votes (and later heartbeats) back its lease.
        for peerName in peers.names { peers[peerName]?.acknowledgedAt = nil }
        state = .candidate(Candidacy(epoch: epoch, startedAt: now, deadline: now + timing.candidacyTimeout, votes: [name], refusals: [], wallClockEpoch: wallFloor > 0))
        out.append(.notice(.candidacyStarted(epoch: epoch, size: membership.members.count)))
        for p in peers.alive(now: now) where membership.isVoter(p.name) {
            requestVote(from: p.name, epoch: epoch, now: now, into: &out)
        }
    }

    /// A vote request goes right behind a heartbeat on the same link: the voter judges the
    /// candidate's membership by the stamp of its last heartbeat, and followers heartbeat each
    /// other only every other interval, so without it a membership change of the last 200 ms
    /// looks stale to the voter, which refuses (the candidacy then fails and backs off).
    /// The candidate's eligibility goes first too: a voter that missed a change of it (a frame
    /// lost with a link that broke) would otherwise refuse a candidate it should want.
    func requestVote(from peerName: String, epoch: UInt64, now: Instant, into out: inout [Directive]) {
        if configuration.protocolVersion >= Eligibility.protocolVersion { out.append(.send(.eligibility(eligibility), to: peerName)) }
        out.append(.send(.heartbeat(heartbeat(for: peerName, now: now)), to: peerName))
        out.append(.send(.voteRequest(epoch: epoch), to: peerName))
    }

    /// Wins, fails or keeps waiting.
    mutating func resolveCandidacy(now: Instant, quorate: Bool, into out: inout [Directive]) {
        guard case .candidate(let c) = state else { return }
        if now >= c.deadline {
            // Also when replies arrive only now (after a pause): they back no lease any more.
            failCandidacy(c, reason: "no quorum of votes before the deadline", now: now, into: &out)
        } else if membership.isQuorum(c.votes) {
            // Win only with a lease that has not already ended: the votes' promises must
            // still run, or the master hook would start for a role this node cannot hold.
            // A candidacy wins only after its own vote is on disk (on a later event: the
            // shell writes before it takes the next one), so no process is master of an epoch
            // its state does not hold. An epoch taken from the wall clock also wins only soon:
            // after a stall (a slow fsync) a cluster formed meanwhile may hold a higher one,
            // so it runs again with a fresh epoch.
            if !c.voteOnDisk {
                return
            } else if c.wallClockEpoch, now >= c.startedAt + timing.heartbeatInterval * 2 {
                failCandidacy(c, reason: "it stalled for \(now - c.startedAt); its epoch may be stale", now: now, into: &out)
            } else if leaseBacked(now: now) > now {
                becomeMaster(c, now: now, into: &out)
            } else {
                failCandidacy(c, reason: "the votes came too late to back a lease", now: now, into: &out)
            }
        } else if c.refusals.count * 2 >= membership.members.count || wanted(now: now)?.name != name || !quorate {
            let reason = wanted(now: now)?.name != name ? "a better node is alive" : (!quorate ? "no quorum" : "not enough votes")
            failCandidacy(c, reason: reason, now: now, into: &out)
        }
    }

    mutating func failCandidacy(_ c: Candidacy, reason: String, now: Instant, into out: inout [Directive]) {
        state = .follower
        let pause = Int64.random(in: timing.candidacyBackoff, using: &random)
        candidacyNotBefore = now + .milliseconds(pause)
        out.append(.notice(.candidacyFailed(epoch: c.epoch, reason: reason)))
    }

    /// The new master first puts its own list on a quorum, stamped with its epoch: until that
    /// is done it changes nothing (see `advanceMembership`).
    mutating func becomeMaster(_ c: Candidacy, now: Instant, into out: inout [Directive]) {
        promise = nil
        pendingVote = nil
        handedOver = false
        masterEpoch = c.epoch
        knewAMaster = true
        // A master elected from a brand-new list founds a cluster: it names it (see
        // QuorumInstance+Clusters.swift); every later list keeps the name.
        let founding = membership.stamp == .bootstrap
        let cluster = founding || membership.list.cluster == 0 ? (identity.instance ^ c.epoch) | 1 : membership.list.cluster
        // The founder's list names it first, the tie-breaker's anchor (Membership.swift). Only
        // here may a new list reorder without a change: no node counts the tie-breaker over a
        // brand-new list, so no quorum anchored elsewhere exists yet.
        let members = founding ? Membership.anchored(membership.list.members, first: name) : membership.list.members
        let own = MembershipList(epoch: c.epoch, version: 1, members: members, previous: membership.list.previous, cluster: cluster)
        state = .master(Mastership(epoch: c.epoch, unsettled: planted == .changeBeforeOwnList ? nil : own.stamp, requestedAt: c.startedAt))
        publish(own, into: &out)
        nextHeartbeat = now
    }
}
