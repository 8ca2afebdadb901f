/// Frames from peers: heartbeats, masters heard, promises released.
extension QuorumInstance {
    mutating func onMessage(_ message: Message, from: String, now: Instant, into out: inout [Directive]) {
        if case .nameTaken(let holder) = message {
            onNameTaken(holder, now: now, into: &out)
            return
        }
        guard var p = peers[from], from != name else { return }
        p.lastHeard = now
        p.linkUp = true
        p.heardOnLink = true
        let returned = p.lost
        if p.lost {
            p.lost = false
            p.aliveSince = now
            // What it missed of this node's eligibility while it was silent is said again.
            p.eligibilitySent = false
            out.append(.notice(.peerConnected(name: from, connected: peers.linkedCount)))
        }
        peers[from] = p
        if returned { askForVoteIfCandidate(from, now: now, into: &out) }
        switch message {
        case .heartbeat(let h):
            acceptedByPeer = true
            onHeartbeat(h, from: from, now: now, into: &out)
        case .voteRequest(let epoch):
            onVoteRequest(epoch: epoch, from: from, stamp: p.membership, now: now, into: &out)
        case .voteReply(let epoch, let granted):
            onVoteReply(epoch: epoch, granted: granted, from: from, now: now, into: &out)
        case .members(let c):
            peers[from]?.list = c
            onList(c, from: from, now: now, into: &out)
        case .resign(let epoch):
            if let pr = promise, pr.name == from, pr.epoch == epoch { releasePromise(now: now, into: &out) }
        case .bye:
            dispatch(from, now: now, into: &out)
        case .forget(let target):
            if case .master = state { _ = forget(target, now: now, into: &out) }
        case .versions(let range):
            let own = ProtocolRange(lowest: WireFormat.lowestVersion, highest: configuration.protocolVersion)
            peers[from]?.protocolVersion = own.common(with: range) ?? WireFormat.lowestVersion
        case .eligibility(let e):
            onEligibility(e, from: from, now: now)
        case .stepDown(let request):
            onStepDownMessage(request, from: from, now: now, into: &out)
        case .stepDownAnswer(let id, let answer):
            out.append(.stepDownAnswered(id: id, answer))
        case .handover(let epoch, let target, let within):
            onHandover(epoch: epoch, to: target, within: within, from: from, now: now)
        case .left(let d):
            onLeft(d, from: from, now: now, into: &out)
        case .announce, .hello, .nameTaken:
            break
        }
    }

    mutating func onHeartbeat(_ h: Heartbeat, from: String, now: Instant, into out: inout [Directive]) {
        guard var p = peers[from] else { return }
        p.receivedSequence = h.sequence
        p.echoed = h.echo
        p.following = h.following
        p.membership = h.membership
        if case .master(let m) = state, let f = h.following, f.name == name, f.instance == identity.instance, f.epoch == m.epoch {
            if let t = lease.sendTime(of: h.echo) { p.acknowledgedAt = max(p.acknowledgedAt ?? t, t) }
        }
        peers[from] = p
        highestEpoch = max(highestEpoch, h.epoch)

        let followed = currentMaster(now: now)
        if let held = h.holding {
            acceptMaster(from, instance: p.identity.instance, epoch: held, working: h.role == .master, now: now, into: &out)
            // A master followed for the first time hears so at once: it admits only followers.
            if let m = currentMaster(now: now), m.name == from, m != followed {
                out.append(.send(.heartbeat(heartbeat(for: from, now: now)), to: from))
            }
        } else if let pr = promise, pr.isMaster, pr.name == from, pr.instance == p.identity.instance {
            // It no longer holds its epoch: it stepped down and its hook has finished.
            releasePromise(now: now, into: &out)
        }
        // A follower of a newer master tells an old master that it has been replaced.
        // (Only a master of this cluster counts: another cluster's epochs say nothing here.)
        if let held = heldEpoch, let f = h.following, f.epoch > held, f.name != name, !isForeignMaster(f.name) {
            stepDownSuperseded(now: now, into: &out)
        }
        // A node of another cluster (or a newcomer) learns this node's list, to rank the two.
        if h.membership < membership.stamp || (h.membership != membership.stamp && !membership.names(from)) {
            sendListIfNeeded(to: from, evenIfNewer: true, into: &out)
        }
    }

    /// `working`: the sender says it is master (not stepping down in order).
    mutating func acceptMaster(_ master: String, instance: UInt64, epoch: UInt64, working: Bool, now: Instant, into out: inout [Directive]) {
        guard !isForeignMaster(master) else { return }
        guard epoch >= highestEpoch || epoch >= (promise?.epoch ?? 0) else { return }
        if let pr = promise, pr.until > now, pr.epoch > epoch { return }
        if let pr = promise, pr.until > now, pr.epoch == epoch, pr.name != master { return }
        // A promise made in another cluster than the one this node's list now belongs to ends
        // only by itself: that cluster's epochs say nothing of this one's, so a higher epoch
        // here does not mean the promised master's lease is over (seed 27919).
        if let pr = promise, pr.until > now, pr.name != master, pr.cluster != 0, pr.cluster != membership.list.cluster { return }
        if let held = heldEpoch {
            if held >= epoch { return }  // we hold a newer or the same epoch: the sender will learn
            stepDownSuperseded(now: now, into: &out)
        }
        if case .candidate(let c) = state {
            // A candidate of a higher epoch gives up too when a working master speaks: its
            // voters follow that master and defer, so the candidacy could only fail again and
            // again (seed 15252: a node back from a stall, better by the metric, stood against a
            // working master for as long as it lived). A better node takes the role by the
            // master's handover, not against it; the target of a handover stands on.
            guard c.epoch <= epoch || (working && activeHandover(now: now) == nil) else { return }
            state = .follower
        }
        highestEpoch = max(highestEpoch, epoch)
        knowsCluster = true
        if epoch > restoredEpoch { heardNewerMaster = true }
        if epoch > persistent.highestEpoch {
            // Remembered across a crash: the epochs this node may have promised its vote in.
            persistent.highestEpoch = epoch
            out.append(.persist(persistent))
        }
        // A master newly elected has not stepped aside since (a master stepping down in order
        // still holds its epoch until its slave hook is done: that is not news).
        if promise.map({ $0.name != master || $0.epoch != epoch }) ?? true { peers[master]?.handedOver = false }
        promise = Promise(name: master, instance: instance, epoch: epoch, until: now + timing.electionTimeout, isMaster: true, cluster: membership.list.cluster)
        if pendingVote.map({ $0.epoch <= epoch }) == true { pendingVote = nil }
        masterEpoch = max(masterEpoch, epoch)
    }

    mutating func releasePromise(now: Instant, into out: inout [Directive]) {
        guard let pr = promise else { return }
        promise = nil
        if pr.isMaster { out.append(.notice(.masterGone(previous: pr.name, epoch: pr.epoch))) }
    }
}
