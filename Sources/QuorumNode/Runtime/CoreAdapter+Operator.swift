import NIOCore
import QuorumControl
import QuorumCore

/// The operator's requests of the core: standby, the health check's verdict, step-downs
/// (their state lives in ``OperatorSwitches`` and ``StepDowns``; this is how they reach the
/// core, on the node's loop).
extension CoreAdapter {

    /// Tells the core where this node stands now (a master that may no longer hold the role
    /// steps down in order).
    func refreshEligibility() {
        feed(.eligibilityChanged(switches.eligibility(settings)))
    }

    /// `quorumctl standby on|off [--until-restart]`.
    func setStandby(on: Bool, untilRestart: Bool) throws(StateStore.Failure) -> String {
        let (line, changed) = try switches.setStandby(on: on, untilRestart: untilRestart, name: settings.name)
        if changed { refreshEligibility() }
        return line
    }

    /// A check run ended (see ``OperatorSwitches/checkFinished``).
    func checkFinished(passed: Bool, result: String, output: String?, fullOutput: String, startedAt: Int64, took: Duration) {
        guard let check = settings.check, ending == nil else { return }
        if switches.checkFinished(check, passed: passed, result: result, output: output, fullOutput: fullOutput, startedAt: startedAt, took: took) {
            refreshEligibility()
        }
    }

    /// What the check is told of the node (its role, master and epoch now).
    var checkEnvironment: [String: String] {
        let master = core?.currentMaster(now: now())
        return [
            "QUORUM_ROLE": core?.role.rawValue ?? "discovering", "QUORUM_NAME": settings.name, "QUORUM_CLUSTER": settings.cluster,
            "QUORUM_MASTER": master?.name ?? "", "QUORUM_EPOCH": String(core?.fencingEpoch ?? 0),
            "QUORUM_CHECK_FAILURES": String(switches.failuresInARow),
        ]
    }

    /// See ``OperatorSwitches/preemptionWarning``; from the core as it is (the caller has
    /// just brought it up to date).
    var preemptionWarning: String? {
        guard let core else { return nil }
        return OperatorSwitches.preemptionWarning(name: settings.name, own: core.eligibility, peers: core.peerStatuses(now: now()))
    }

    /// `quorumctl step-down`: the report once a new master is known, the request is refused,
    /// or its time is up.
    func stepDown(to target: String?, timeout: Duration) -> EventLoopFuture<StepDownReport> {
        guard ending == nil, core != nil else {
            return loop.makeSucceededFuture(StepDownReport(outcome: .refused, error: "the node is not running", reason: "no-master"))
        }
        guard let (request, report) = stepDowns.begin(to: target, timeout: timeout, now: now(), expire: { [unowned self] id in
            self.stepDowns.expire(id, master: self.core?.currentMaster(now: self.now()))
        }) else {
            return loop.makeSucceededFuture(StepDownReport(outcome: .refused, error: "too many step-downs are waiting on this node", reason: "busy"))
        }
        feed(.stepDownRequested(request))
        observeStepDowns()
        return report
    }

    func observeStepDowns() {
        guard let core else { return }
        let now = self.now()
        stepDowns.observe(master: core.currentMaster(now: now), now: now) {
            guard let p = core.pendingPreemption(now: now) else { return nil }
            return "\(p.name) (priority \(p.priority)) will take the role back in \((p.at - now).secondsText)s (preempt-delay); run 'quorumctl -n \(p.name) standby on' to keep it off"
        }
    }
}
