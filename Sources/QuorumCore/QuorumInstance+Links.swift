/// Discovery, links, and who holds a name.
///
/// A name stands for one process at a time. A process with a name that another instance
/// holds is admitted only when that instance is proven gone: a dial to its port was refused,
/// or the newcomer listens on the very address and port the holder had. While the holder is
/// alive the newcomer is refused with `nameTaken` (and exits if it has just started); while
/// the holder is merely silent, the newcomer is refused without a word and dials again.
extension QuorumInstance {
    mutating func onAnnounce(_ a: Announce, now: Instant, into out: inout [Directive]) {
        guard a.cluster == configuration.cluster else { return }
        let id = a.identity
        if id.name == name {
            guard id.instance != identity.instance else { return }
            out.append(.notice(.duplicateName(name: id.name, address: id.address, port: id.port)))
            // Link with it: the link settles which of the two may keep the name.
            if planted != .duplicateNames, !peers.isDialling(id.name, now: now) {
                peers.connecting[id.name] = now
                out.append(.connect(id))
            }
            return
        }
        if let p = peers[id.name], p.identity.instance == id.instance, p.linkUp { return }
        if peers[id.name] == nil, peers.isFull {
            out.append(.notice(.peerRefused(name: id.name, reason: "peer table full (\(configuration.maximumPeers))")))
            return
        }
        if peers.isDialling(id.name, now: now) { return }
        peers.connecting[id.name] = now
        out.append(.connect(id))
    }

    /// The identity that holds `peerName` here: a known peer process, or the member entry.
    func holder(of peerName: String) -> NodeIdentity? {
        if peerName == name { return identity }
        return peers[peerName]?.identity ?? membership.entry(peerName)
    }

    mutating func onLinkUp(_ id: NodeIdentity, speaks: ProtocolRange?, now: Instant, into out: inout [Directive]) {
        peers.connecting[id.name] = nil
        if let held = holder(of: id.name), held.instance != id.instance, planted != .duplicateNames || id.name == name {
            if let refusal = refusal(of: id, heldBy: held, now: now) {
                out.append(.notice(.duplicateName(name: id.name, address: id.address, port: id.port)))
                out.append(.refuseLink(id, refusal))
                return
            }
        }
        if id.name == name { return }
        if peers[id.name] == nil, peers.isFull {
            out.append(.notice(.peerRefused(name: id.name, reason: "peer table full (\(configuration.maximumPeers))")))
            return
        }
        // A new name seen, or (before any master) a new member: one write for both.
        var changedOnDisk = false
        if membership.seen.insert(id.name).inserted {
            persistent.seenNames = membership.seen.sorted()
            changedOnDisk = true
        }
        if let gone = membership.departed[id.name], gone != id.instance { membership.departed[id.name] = nil }
        peers.dispatched.removeValue(forKey: id.name)
        if var p = peers[id.name] {
            if p.identity.instance != id.instance {
                // Re-entry: a new start of a node whose old process is gone.
                out.append(.notice(.peerReentered(name: id.name)))
                if let pr = promise, pr.name == id.name, pr.instance == p.identity.instance {
                    releasePromise(now: now, into: &out)
                }
                p = Peer(id, linkUp: true, now: now, timing: timing)
            }
            p.identity = id
            p.linkUp = true
            p.lost = false
            p.gone = false
            p.lastHeard = now
            if p.heardOnLink { p.reconnectDelay = timing.reconnectMinimum }
            p.heardOnLink = false
            p.membershipSent = nil
            p.eligibilitySent = false
            peers[id.name] = p
        } else {
            peers[id.name] = Peer(id, linkUp: true, now: now, timing: timing)
            out.append(.notice(.peerConnected(name: id.name, connected: peers.linkedCount)))
        }
        membership.updateIdentity(id)
        let own = ProtocolRange(lowest: WireFormat.lowestVersion, highest: configuration.protocolVersion)
        peers[id.name]?.protocolVersion = speaks.flatMap { own.common(with: $0) } ?? WireFormat.lowestVersion
        if membership.stamp == .bootstrap, !membership.isMember(id.name) {
            // Before any master exists, everyone seen counts, also after a restart: a node that
            // has seen others never again starts as a lone cluster of one.
            membership.addBeforeAnyMaster(id)
            persistent.membership = membership.list
            changedOnDisk = true
        }
        if changedOnDisk { out.append(.persist(persistent)) }
        // Greet at once: our view of the master and membership reach the newcomer in one round trip.
        sendListIfNeeded(to: id.name, into: &out)
        sayLeftAgain(to: id.name, into: &out)
        if configuration.protocolVersion >= Eligibility.protocolVersion {
            out.append(.send(.eligibility(eligibility), to: id.name))
        }
        out.append(.send(.heartbeat(heartbeat(for: id.name, now: now)), to: id.name))
        askForVoteIfCandidate(id.name, now: now, into: &out)
    }

    /// Why a link from `id` must be refused while `held` holds its name, if it must.
    private mutating func refusal(of id: NodeIdentity, heldBy held: NodeIdentity, now: Instant) -> LinkRefusal? {
        if id.name == name { return .nameTaken(holder: identity) }
        // The holder's process cannot still listen where the newcomer listens: it is gone.
        if held.address == id.address, held.port == id.port { return nil }
        guard let p = peers[id.name] else {
            // A member known only from the list: dial it, so a refusal can prove it gone.
            if !peers.isFull {
                peers[held.name] = Peer(held, linkUp: false, now: now, timing: timing)
            }
            return .holderNotYetGone(holder: held)
        }
        if p.gone { return nil }
        return peers.isAlive(p, now: now) && p.linkUp ? .nameTaken(holder: held) : .holderNotYetGone(holder: held)
    }

    /// A peer refused our link because a live member holds our name. A process that has just
    /// started (or that no peer has accepted) is the second one: it exits with status 2.
    mutating func onNameTaken(_ holder: NodeIdentity, now: Instant, into out: inout [Directive]) {
        if holder.name == name, holder.instance == identity.instance { return }
        // On a direct link between the two, the older keeps the name.
        if holder.name == name, identity.startedBefore(holder) { return }
        out.append(.notice(.nameTaken(holder: holder)))
        let newcomer = now - startedAt < timing.duplicateNameWindow || !acceptedByPeer
        if newcomer, heldEpoch == nil {
            // No goodbye: it would be taken as the holder's, whose name this is.
            out.append(.notice(.roleChanged(from: role, to: .dispatched, epoch: masterEpoch, cause: .leaving)))
            role = .dispatched
            state = .dispatched
            out.append(.exit(code: 2))
        }
    }

    /// A member that could not be asked when the candidacy started (no link, or silent) is
    /// asked once it can hear us: after a partition, links come back one by one, and a
    /// candidacy that asked only the first member back would otherwise wait out its deadline.
    func askForVoteIfCandidate(_ peerName: String, now: Instant, into out: inout [Directive]) {
        guard case .candidate(let c) = state, membership.isVoter(peerName),
              !c.votes.contains(peerName), !c.refusals.contains(peerName) else { return }
        requestVote(from: peerName, epoch: c.epoch, now: now, into: &out)
    }

    mutating func onLinkDown(_ peerName: String, instance: UInt64, loss: LinkLoss, now: Instant, into out: inout [Directive]) {
        peers.connecting[peerName] = nil
        guard var p = peers[peerName], p.identity.instance == instance else { return }
        p.linkUp = false
        switch loss {
        case .closed where !p.heardOnLink && p.reconnectDelay >= timing.reconnectMinimum:
            // A link that closed before the peer said anything on it (a peer that refuses it,
            // say) is dialled again with the usual back-off, not in a tight loop.
            p.reconnectAt = now + p.reconnectDelay
            p.reconnectDelay = min(p.reconnectDelay * 2, timing.reconnectMaximum)
        case .closed:
            // Probe at once: a refused reconnect proves the process is gone. A dying process's
            // listening socket may outlive its links by a moment (the probe is accepted, then
            // reset), so probe again quickly: 2, 4, 8 ms … up to the usual back-off.
            p.reconnectAt = now
            p.reconnectDelay = .milliseconds(2)
        case .refused:
            p.gone = true
            if !p.lost {
                p.lost = true
                out.append(.notice(.peerLost(name: peerName, evidence: "connection refused")))
            }
            if let pr = promise, pr.name == peerName, pr.instance == instance {
                peers[peerName] = p
                releasePromise(now: now, into: &out)
            }
            fallthrough
        case .unreachable:
            p.reconnectAt = now + p.reconnectDelay
            p.reconnectDelay = min(p.reconnectDelay * 2, timing.reconnectMaximum)
        }
        peers[peerName] = p
        if case .candidate(var c) = state, c.votes.contains(peerName), loss == .refused {
            c.votes.remove(peerName)
            state = .candidate(c)
        }
    }
}
