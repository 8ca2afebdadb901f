/// A planned step-down: the operator asks any node; the master decides. On acceptance the
/// master keeps out of elections for the handover (or it would win again at once), steps
/// down in order (its slave hook finishes first) and then tells every member whom to elect
/// next; the target stands at once. The exclusion ends when a newer master is known or at
/// the request's timeout, after which the old master may be elected again. Nothing of it
/// outlives the handover, and it changes only whom members vote for: majorities, epochs and
/// leases stay what keeps the cluster safe.
extension QuorumInstance {
    /// The operator asked this node: a master decides, another node forwards to its master.
    mutating func onStepDownRequested(_ request: StepDownRequest, now: Instant, into out: inout [Directive]) {
        switch state {
        case .master, .resigning:
            out.append(.stepDownAnswered(id: request.id, decideStepDown(request, now: now)))
        default:
            if let h = activeHandover(now: now) {
                out.append(.stepDownAnswered(id: request.id, .refused(busy(h, now: now))))
            } else if let inactive = featureInactive(now: now) {
                // A master of an older protocol would skip the request and never answer.
                out.append(.stepDownAnswered(id: request.id, .refused(inactive)))
            } else if let m = currentMaster(now: now), peers[m.name]?.linkUp == true {
                out.append(.send(.stepDown(request), to: m.name))
            } else {
                out.append(.stepDownAnswered(id: request.id, .refused(noMaster(now: now))))
            }
        }
    }

    func noMaster(now: Instant) -> StepDownRefusal {
        let why = noMasterReason(quorate: isQuorate(now: now), now: now)
        return StepDownRefusal(.noMaster, "no master to step down (\(why.rawValue))")
    }

    /// Refused while a member speaks a protocol without step-downs (or priorities).
    func featureInactive(now: Instant) -> StepDownRefusal? {
        guard !preferencesActive(now: now) else { return nil }
        let behind = peers.alive(now: now).filter { membership.isMember($0.name) && $0.protocolVersion < Eligibility.protocolVersion }
        let who = behind.map { "\($0.name) speaks protocol \($0.protocolVersion)" }.joined(separator: ", ")
        return StepDownRefusal(.featureInactive, "feature inactive: \(who.isEmpty ? "this node speaks protocol \(configuration.protocolVersion)" : who)")
    }

    /// A peer forwards an operator's request: answer it on the same link.
    mutating func onStepDownMessage(_ request: StepDownRequest, from peer: String, now: Instant, into out: inout [Directive]) {
        let answer: StepDownAnswer
        switch state {
        case .master, .resigning:
            answer = decideStepDown(request, now: now)
        default:
            answer = .refused(StepDownRefusal(.noMaster, "no master to step down (\(name) no longer is)"))
        }
        out.append(.send(.stepDownAnswer(id: request.id, answer), to: peer))
    }

    /// Validates a request at the master and, if it is sound, starts the handover (the step
    /// down itself follows on this event's reconcile, as for any master no longer wanted).
    mutating func decideStepDown(_ request: StepDownRequest, now: Instant) -> StepDownAnswer {
        guard case .master(let m) = state else {
            if case .resigning(let r) = state {
                if let h = activeHandover(now: now) { return .refused(busy(h, now: now)) }
                // Stepping down for its lease or its quorum, or handing over to a better member.
                if r.then == .follow, isQuorate(now: now) {
                    return .refused(StepDownRefusal(.busy, "a handover is already under way (\(name) is stepping down from epoch \(r.epoch))"))
                }
            }
            return .refused(noMaster(now: now))
        }
        if let h = activeHandover(now: now) { return .refused(busy(h, now: now)) }
        if let inactive = featureInactive(now: now) { return .refused(inactive) }
        let target: String
        if let t = request.target {
            if let refusal = targetRefusal(t, now: now) { return .refused(refusal) }
            target = t
        } else {
            let others = peers.alive(now: now).filter { membership.isMember($0.name) && $0.eligibility?.isEligible == true }
                .map { ($0.identity, $0.eligibility!) }
            guard let best = others.min(by: { Eligibility.isPreferred($0, over: $1, metric: configuration.metric) }) else {
                return .refused(StepDownRefusal(.noOtherEligible, "no other eligible member"))
            }
            target = best.0.name
        }
        handover = Handover(from: name, to: target, epoch: m.epoch, startedAt: now, until: now + request.timeout)
        // Once the handover is over this node takes the role back by a higher priority after
        // its delay (counted from now), never by the metric.
        if eligibility.isEligible { eligibleSince = now }
        handedOver = true
        return .accepted(from: name, to: target, epoch: m.epoch)
    }

    /// Why `target` cannot take over from this master, if it cannot.
    func targetRefusal(_ target: String, now: Instant) -> StepDownRefusal? {
        if target == name { return StepDownRefusal(.alreadyMaster, "\(target) is the master already") }
        func ineligible(_ why: String) -> StepDownRefusal { StepDownRefusal(.targetIneligible, "\(target) is not eligible: \(why)") }
        guard let p = peers[target] else {
            if peers.dispatched[target] != nil { return ineligible("dispatched") }
            return membership.isMember(target) ? ineligible("lost") : StepDownRefusal(.unknownMember, "no member named \(target)")
        }
        guard peers.isAlive(p, now: now) else { return ineligible("lost") }
        guard membership.isMember(target) else { return ineligible("not yet admitted") }
        guard let e = p.eligibility else { return ineligible("it has not said where it stands yet") }
        guard e.isEligible else { return ineligible(e.ineligibleReasons.map(\.rawValue).joined(separator: ", ")) }
        return nil
    }

    func busy(_ h: Handover, now: Instant) -> StepDownRefusal {
        // Tenths of a second below ten seconds, whole seconds above.
        let ms = (now - h.startedAt).nanosecondsClamped / 1_000_000
        let started = Duration.milliseconds(ms < 10_000 ? ms / 100 * 100 : ms / 1000 * 1000).secondsText
        return StepDownRefusal(.busy, "a handover is already under way (to \(h.to), started \(started)s ago)")
    }

    /// The handover under way, if it has not ended (a newer master is known, or its time is up).
    func activeHandover(now: Instant) -> Handover? {
        guard let h = handover, now < h.until, masterEpoch <= h.epoch else { return nil }
        return h
    }

    /// The old master has stepped down (its slave hook finished): every member learns whom to
    /// elect, right before the `resign` that frees their promises.
    func announceHandover(epoch: UInt64, now: Instant, into out: inout [Directive]) {
        guard let h = activeHandover(now: now), h.from == name, h.epoch == epoch else { return }
        say(.handover(epoch: epoch, to: h.to, within: h.until - now), into: &out)
    }

    /// A master that stepped down for a handover tells whom to elect next.
    mutating func onHandover(epoch: UInt64, to target: String, within: Duration, from peer: String, now: Instant) {
        guard epoch >= masterEpoch, within > .zero else { return }
        handover = Handover(from: peer, to: target, epoch: epoch, startedAt: now, until: now + min(within, StepDownRequest.timeoutRange.upperBound))
        // As the old master counts itself (see decideStepDown).
        if peers[peer]?.eligibility?.isEligible == true { peers[peer]?.eligibleSince = now }
        peers[peer]?.handedOver = true
        // The target stands at once, without its back-off.
        if target == name { candidacyNotBefore = now }
    }
}
