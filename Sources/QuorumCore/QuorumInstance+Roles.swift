/// Roles, their hooks, stepping down in order, and leaving.
extension QuorumInstance {
    @discardableResult
    mutating func setRole(_ newRole: Role, cause: RoleChangeCause, now: Instant, into out: inout [Directive]) -> UInt64? {
        guard newRole != role else { return nil }
        let previous = role
        role = newRole
        let current = currentMaster(now: now)
        // A master hook names the epoch it holds; any other the newest epoch this node knows.
        let epoch = newRole == .master ? (heldEpoch ?? masterEpoch) : max(heldEpoch ?? 0, current?.epoch ?? 0, masterEpoch)
        // A node without quorum, or one that left, has no master to name.
        let master = newRole == .noQuorum || newRole == .dispatched ? nil : current
        out.append(.notice(.roleChanged(from: previous, to: newRole, epoch: epoch, cause: cause)))
        guard newRole != .discovering else { return nil }
        let id = nextHookID
        nextHookID += 1
        out.append(.runHook(HookRun(id: id, role: newRole, previousRole: previous, epoch: epoch, master: master?.name, cause: cause)))
        // A step-down ends when the newest hook since has finished (a queued older one may be
        // skipped as stale; the newest always runs).
        if case .resigning(var r) = state {
            r.hook = id
            state = .resigning(r)
        }
        return id
    }

    mutating func updateRole(now: Instant, settled: Bool, into out: inout [Directive]) {
        let quorate = isQuorate(now: now)
        let target: Role
        var cause: RoleChangeCause = .masterChanged
        switch state {
        case .dispatched:
            return
        case .master:
            target = .master
            cause = .elected
        case .resigning(let r):
            if case .leave = r.then { return }
            target = quorate ? .slave : .noQuorum
        case .follower, .candidate:
            let master = currentMaster(now: now)
            if let m = master, quorate, role == .discovering,
               let masterID = peers[m.name]?.identity, configuration.metric.isBetter(identity, than: masterID),
               joinsAsBetterByMetric(than: m.name, now: now),
               now < startedAt + timing.discoveryWindow + timing.electionTimeout {
                // A newcomer better than the master by the metric: the master hands over to it,
                // so it goes straight to master instead of running its slave hook first.
                target = .discovering
            } else if master != nil && quorate {
                target = .slave
                cause = role == .discovering ? .joined : (role == .noQuorum ? .quorumRegained : .masterChanged)
            } else if !quorate {
                target = settled ? .noQuorum : role
                cause = .quorumLost
            } else {
                target = role == .noQuorum ? .slave : role
                cause = .quorumRegained
            }
        }
        // A witness is where another node would be slave.
        setRole(target == .slave && eligibility.witness ? .witness : target, cause: cause, now: now, into: &out)
    }

    /// Whether a newcomer better than the master by the metric takes over at join (as before
    /// priorities): only within the master's priority. A higher priority waits out the
    /// master's preempt delay as a slave; a lower one never takes over.
    func joinsAsBetterByMetric(than master: String, now: Instant) -> Bool {
        guard preferencesActive(now: now) else { return !eligibility.witness }
        return eligibility.isEligible && eligibility(of: master)?.priority == eligibility.priority
    }

    mutating func onHookFinished(_ id: UInt64, now: Instant, into out: inout [Directive]) {
        if case .resigning(let r) = state, id >= r.hook { finishResignation(now: now, into: &out) }
    }

    mutating func finishResignation(now: Instant, into out: inout [Directive]) {
        guard case .resigning(let r) = state else { return }
        switch r.then {
        case .follow:
            state = .follower
            announceHandover(epoch: r.epoch, now: now, into: &out)
            say(.resign(epoch: r.epoch), into: &out)
            nextHeartbeat = now
        case .leave(let code):
            state = .dispatched
            say(.bye, into: &out)
            persistDeparture(into: &out)
            out.append(.exit(code: code))
        }
    }

    /// A goodbye consents to this node's removal: its peers stop counting it at once. So the
    /// list on disk must not count it either, or a later start could win a tie-breaker or a
    /// quorum with it. The next start is a newcomer that keeps its epochs, its votes and the
    /// names it has seen (docs/protocol.md, "Leaving and dying"). It also keeps the list it
    /// left: a member that did not hear this goodbye (down, or cut off) still counts it there,
    /// and the next start must not let it (see `Departure`).
    mutating func persistDeparture(into out: inout [Directive]) {
        if membership.stamp != .bootstrap, membership.names(name), planted != .leftListRecounted {
            persistent.departure = Departure(cluster: membership.list.cluster, stamp: membership.stamp)
        }
        persistent.membership = MembershipList(epoch: 0, version: 0, members: [identity])
        out.append(.persist(persistent))
    }

    mutating func leave(code: Int32, cause: RoleChangeCause, now: Instant, into out: inout [Directive]) {
        switch state {
        case .dispatched:
            return
        case .resigning(var r):
            r.then = .leave(code: code)
            state = .resigning(r)
            setRole(.dispatched, cause: cause, now: now, into: &out)
        case .master(let m):
            out.append(.notice(.steppingDown(epoch: m.epoch, cause: cause)))
            state = .resigning(Resignation(epoch: m.epoch, hook: 0, then: .leave(code: code)))
            let hook = setRole(.dispatched, cause: cause, now: now, into: &out)
            nextHeartbeat = now
            if hook == nil { finishResignation(now: now, into: &out) }
        case .follower, .candidate:
            setRole(.dispatched, cause: cause, now: now, into: &out)
            say(.bye, into: &out)
            state = .dispatched
            persistDeparture(into: &out)
            out.append(.exit(code: code))
        }
    }

    /// Steps down in order: the slave hook runs while peers are told this node still holds
    /// its epoch; only when it has finished do they hear `resign` (see finishResignation).
    mutating func stepDown(cause: RoleChangeCause, now: Instant, into out: inout [Directive]) {
        guard case .master(let m) = state else { return }
        out.append(.notice(.steppingDown(epoch: m.epoch, cause: cause)))
        state = .resigning(Resignation(epoch: m.epoch, hook: 0, then: .follow))
        setRole(isQuorate(now: now) ? .slave : .noQuorum, cause: cause, now: now, into: &out)
        nextHeartbeat = now
    }

    mutating func stepDownSuperseded(now: Instant, into out: inout [Directive]) {
        switch state {
        case .master(let m):
            out.append(.notice(.steppingDown(epoch: m.epoch, cause: .superseded)))
            state = .follower
            setRole(isQuorate(now: now) ? .slave : .noQuorum, cause: .superseded, now: now, into: &out)
        case .resigning(let r):
            if case .leave = r.then { return }
            state = .follower
        default:
            break
        }
    }
}
