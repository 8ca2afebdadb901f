/// Membership changes: the master's list and how it changes, one step at a time.
///
/// A new master first puts its own list, stamped with its epoch, on a quorum. Then each
/// change (a removal of a node that left or was forgotten, first; else one newcomer) goes
/// out as a *joint* list (new members, and the list before) and, once a quorum of both has
/// it, as the plain new list; the next change starts only when that is on a quorum too. So
/// two lists in force always have overlapping quorums, the tie-breaker's half included.
extension QuorumInstance {
    mutating func advanceMembership(now: Instant, into out: inout [Directive]) {
        guard case .master(var m) = state else { return }
        if planted == .changeBeforeOwnList {
            plantedOldChange(&m, now: now, into: &out)
            return
        }
        if let unsettled = m.unsettled {
            guard membership.isKnown(by: having(unsettled, now: now)) else { return }
            m.unsettled = nil
            state = .master(m)
        }
        let list = membership.list
        let next: MembershipList
        if list.previous != nil {
            // The joint list is known to a quorum of both: the change is done.
            next = MembershipList(epoch: m.epoch, version: list.version + 1, members: list.members, cluster: list.cluster)
        } else if let change = nextChange(now: now) {
            next = MembershipList(epoch: m.epoch, version: list.version + 1, members: change, previous: list.members, cluster: list.cluster)
        } else {
            return
        }
        m.unsettled = next.stamp
        state = .master(m)
        publish(next, into: &out)
    }

    /// This node and the alive peers whose list is at least `stamp`.
    private func having(_ stamp: MembershipStamp, now: Instant) -> Set<String> {
        Set([name] + peers.alive(now: now).filter { $0.membership >= stamp }.map(\.name))
    }

    /// The member list after the next change, if one is wanted: a node that left or was
    /// forgotten goes first; else the first newcomer by name comes in; else, with the
    /// tie-breaker, this master moves itself to the front of the list, so that the half
    /// holding the master is the one that keeps it in an even split.
    private func nextChange(now: Instant) -> [MemberEntry]? {
        let list = membership.list.members
        if let gone = list.first(where: { membership.departed[$0.name] != nil }) {
            return list.filter { $0.name != gone.name }
        }
        // Only a node that follows this master: one settled in another cluster does not.
        let newcomers = peers.alive(now: now).filter {
            !membership.isMember($0.name) && $0.following?.name == name && $0.following?.instance == identity.instance
        }
        if let next = newcomers.first?.identity { return membership.members + [next] }
        if configuration.tieBreaker, list.first?.name != name, list.contains(where: { $0.name == name }) {
            return Membership.anchored(list, first: name)
        }
        return nil
    }

    /// The rule before holes 1 and 2 were closed (test only): plain lists, admissions wait for
    /// a majority of the new list, removals and the new master's own list do not wait.
    private mutating func plantedOldChange(_ m: inout Mastership, now: Instant, into out: inout [Directive]) {
        let list = membership.list
        if let gone = list.members.first(where: { membership.departed[$0.name] != nil }) {
            let next = MembershipList(epoch: m.epoch, version: list.version + 1, members: list.members.filter { $0.name != gone.name }, cluster: list.cluster)
            m.unsettled = next.stamp
            state = .master(m)
            publish(next, into: &out)
            return
        }
        if let unsettled = m.unsettled {
            guard Membership.isMajority(having(unsettled, now: now), of: membership.members) else { return }
            m.unsettled = nil
            state = .master(m)
        }
        guard let change = nextChange(now: now) else { return }
        let next = MembershipList(epoch: m.epoch, version: list.version + 1, members: change, cluster: list.cluster)
        m.unsettled = next.stamp
        state = .master(m)
        publish(next, into: &out)
    }

    /// This master's new list: keep it, persist it, tell everyone at once.
    mutating func publish(_ list: MembershipList, into out: inout [Directive]) {
        membership.replace(with: list)
        departuresToRecall = true
        persistent.membership = list
        out.append(.persist(persistent))
        out.append(.notice(.membershipChanged(stamp: list.stamp, size: membership.members.count)))
        for p in peers.ordered where p.linkUp { sendListIfNeeded(to: p.name, into: &out) }
    }

    /// A newer list from a master (or relayed by anyone): adopt it, persist it, and
    /// acknowledge it to the sender at once, so the master's change is not held up a heartbeat.
    mutating func adopt(_ c: MembershipList, from sender: String, evenIfOlder: Bool = false, now: Instant, into out: inout [Directive]) {
        guard c.stamp > membership.stamp || (evenIfOlder && c != membership.list) else { return }
        if case .master(let m) = state, c.epoch <= m.epoch { return }
        knewAMaster = true
        take(c, into: &out)
        out.append(.send(.heartbeat(heartbeat(for: sender, now: now)), to: sender))
    }

    /// Makes `c` this node's list, with the latest identities it knows, and persists it.
    mutating func take(_ c: MembershipList, into out: inout [Directive]) {
        // Names that said goodbye to us stay out until the master admits them again.
        membership.replace(with: c)
        departuresToRecall = true
        membership.updateIdentity(identity)
        // Taken out of the cluster it left: counted as any newcomer from now on.
        if countsItselfOut, !c.names(name), persistent.departure.map({ c.stamp > $0.stamp }) ?? true { countsItselfOut = false }
        countOutSelf()
        for p in peers.ordered { membership.updateIdentity(p.identity) }
        persistent.membership = membership.list
        persistent.highestEpoch = max(persistent.highestEpoch, highestEpoch)
        out.append(.persist(persistent))
        out.append(.notice(.membershipChanged(stamp: membership.stamp, size: membership.members.count)))
    }

    /// Sends this node's list to `peer` once per stamp, when the peer's is older (or, with
    /// `evenIfNewer`, whenever it differs: a peer of another cluster ranks the two lists).
    /// `again`: even if sent before, for a peer that shows it still holds an older list (a
    /// candidate refused for it: the first copy may have been lost to a cut the link outlived,
    /// and without it the two would refuse each other for ever: seed 1945).
    mutating func sendListIfNeeded(to peer: String, evenIfNewer: Bool = false, again: Bool = false, into out: inout [Directive]) {
        guard membership.stamp != .bootstrap, var p = peers[peer], p.linkUp else { return }
        if (p.membershipSent == membership.stamp && !again) || p.membership == membership.stamp { return }
        if p.membership > membership.stamp, !evenIfNewer { return }
        p.membershipSent = membership.stamp
        peers[peer] = p
        out.append(.send(.members(membership.list), to: peer))
    }

    /// A voter's brand-new list, sent with its vote while ours is brand-new too: every node it
    /// has seen counts here as well, before its vote is counted. Without this, a node that met
    /// only one other could found a cluster with that one vote while the voter had seen many
    /// more: a majority of the candidate's list, not of the voter's (seed 3511: two nodes
    /// behind a partition before any master, one of which had seen five others). A node that
    /// joined the list this way counts, but is not *seen* for `--expected-nodes` until this
    /// node meets it.
    mutating func mergeBootstrap(_ list: MembershipList, into out: inout [Directive]) {
        guard membership.stamp == .bootstrap, list.stamp == .bootstrap else { return }
        let before = membership.list.members.count
        for entry in list.members where entry.name != name { membership.addBeforeAnyMaster(entry) }
        guard membership.list.members.count > before else { return }
        persistent.membership = membership.list
        out.append(.persist(persistent))
    }

    /// A peer said goodbye: it no longer counts here at once; the master takes it out of the
    /// list in its turn (see `advanceMembership`).
    mutating func dispatch(_ peerName: String, now: Instant, into out: inout [Directive]) {
        guard let p = peers.remove(peerName) else { return }
        peers.dispatched[peerName] = p.identity
        out.append(.notice(.peerDispatched(name: peerName)))
        if let pr = promise, pr.name == peerName { releasePromise(now: now, into: &out) }
        if pendingVote?.name == peerName { pendingVote = nil }
        membership.departed[peerName] = p.identity.instance
        if case .candidate(var c) = state {
            c.votes.remove(peerName)
            state = .candidate(c)
        }
    }

    /// A list this node left, held by `peer`, which did not hear the goodbye (it was down or
    /// cut off): tell it, and never take the list. Counting in it would count this node twice:
    /// once as gone, in the lists made since by the members that heard the goodbye, and once
    /// as a voter in the old list — two quorums with no member in common (seeds 20908, 13592:
    /// a node that left, back with a member that was down, made a tie-breaker half of an old
    /// list while the others had a master of a newer one).
    ///
    /// Once it has told one member, it must not count anywhere in that cluster until a master
    /// has taken it out of the list: the member it told counts it out of every list it makes
    /// from then on, newer ones included, and a member that counted it in beside one that
    /// counts it out would let two tie-breaker halves elect (seed 13544). So it tells every
    /// member that names it, and counts itself out too.
    mutating func sayLeft(_ d: Departure, through stamp: MembershipStamp, to peer: String, into out: inout [Directive]) {
        guard configuration.protocolVersion >= Departure.protocolVersion else { return }
        // Holding a list of that cluster at least as new as the one it left, taken from a
        // member that had it, it is back in the cluster that went on (and does not count itself
        // out: seeds 16286, 18450, where that left no one who could be master). The member
        // with the older list can make no quorum of it while this node refuses it; it needs
        // the newer list, not a goodbye: counted out, this node would stay out of that list
        // there once taken, while it counts itself in (seed 35230: no one was ever elected).
        if !countsItselfOut, d.isOfCluster(membership.list), membership.stamp >= d.stamp {
            sendListIfNeeded(to: peer, again: true, into: &out)
            return
        }
        out.append(.send(.left(d.through(stamp)), to: peer))
        guard !countsItselfOut else { return }
        countsItselfOut = true
        countOutSelf()
        for p in peers.ordered where p.linkUp && p.name != peer { sayLeftAgain(to: p.name, into: &out) }
    }

    /// While this node counts itself out: tell `peer`, whatever list it holds (it ignores the
    /// frame unless its list of that cluster names this node).
    mutating func sayLeftAgain(to peer: String, into out: inout [Directive]) {
        guard countsItselfOut, let d = persistent.departure, configuration.protocolVersion >= Departure.protocolVersion else { return }
        out.append(.send(.left(d.through(max(membership.stamp, peers[peer]?.membership ?? .bootstrap))), to: peer))
    }

    /// Counts this node out of the list it holds, while that list (of the cluster it left)
    /// still names it.
    mutating func countOutSelf() {
        guard countsItselfOut, let d = persistent.departure, d.isOfCluster(membership.list), membership.names(name) else { return }
        membership.departed[name] = identity.instance
    }

    /// A peer's new start says it left this node's list (or a newer one) at `d`: as if its
    /// goodbye had arrived, it no longer counts here, and the master takes it out of the list
    /// before it can be admitted again. Its link stays up, so that it can be.
    mutating func onLeft(_ d: Departure, from peerName: String, now: Instant, into out: inout [Directive]) {
        guard var p = peers[peerName] else { return }
        p.departure = d
        peers[peerName] = p
        guard d.reaches(membership.list, naming: peerName), membership.departed[peerName] == nil else { return }
        membership.departed[peerName] = p.identity.instance
        // Its list was made in an epoch this node may not have seen: the next candidacy
        // stands above it.
        highestEpoch = max(highestEpoch, d.stamp.epoch)
        out.append(.notice(.peerLeftEarlier(name: peerName, stamp: d.stamp)))
        if let pr = promise, pr.name == peerName { releasePromise(now: now, into: &out) }
        if pendingVote?.name == peerName { pendingVote = nil }
        if case .candidate(var c) = state {
            if c.epoch <= d.stamp.epoch {
                // Its list was made in a later epoch than this candidacy's: a master may have
                // held one since (seed 18242), so stand again above it.
                failCandidacy(c, reason: "\(peerName) left the cluster at membership \(d.stamp)", now: now, into: &out)
            } else {
                c.votes.remove(peerName)
                state = .candidate(c)
            }
        }
    }

    /// Peers that said they left a cluster whose list this node has taken only since (the
    /// frame came while it held another cluster's list, or an older one it did not reach):
    /// counted out now, as if the frame had come after (seed 121 of `--kinds
    /// slow-disk,leave,wipe,crash`: a node that had said so while this one was master of a
    /// cluster apart still counted here once it joined that cluster, wanted as master while it
    /// counted itself out, and no one could be elected).
    mutating func recallDepartures(now: Instant, into out: inout [Directive]) {
        guard departuresToRecall else { return }
        departuresToRecall = false
        // `onLeft` counts out only where the claim reaches the list and has not been applied.
        let claims = peers.byName.values.compactMap { p in p.departure.map { (p.name, $0) } }
        for (peer, d) in claims.sorted(by: { $0.0 < $1.0 }) { onLeft(d, from: peer, now: now, into: &out) }
    }

    /// An operator's `forget`: drop a lost or dispatched node, so it no longer counts.
    mutating func forget(_ peerName: String, now: Instant, into out: inout [Directive]) -> ForgetOutcome {
        if peerName == name { return .stillConnected }
        if peers.isAlive(peerName, now: now) { return .stillConnected }
        let known = peers[peerName] != nil || peers.dispatched[peerName] != nil || membership.isMember(peerName)
        guard known else { return .unknown }
        peers.remove(peerName)
        peers.dispatched[peerName] = nil
        out.append(.notice(.peerForgotten(name: peerName)))
        membership.departed[peerName] = 0
        return .forgotten
    }
}
