import QuorumControl
import QuorumCore

/// What the operator has switched on this node beyond its settings: its standby (kept in the
/// state directory unless `--until-restart`) and its health check's verdict. Together with the
/// settings they make the eligibility the node tells the core (``CoreAdapter`` feeds it).
/// Confined to the node's event loop, like the adapter that owns it.
final class OperatorSwitches {
    private let store: StateStore
    private let notices: Notices
    /// `quorumctl standby on`: since when (milliseconds since 1970), and whether it is on disk.
    private(set) var standby: (since: Int64, persistent: Bool)?
    private var health = HealthState()

    init(store: StateStore, notices: Notices) {
        self.store = store
        self.notices = notices
    }

    /// At start: a standby left on disk by an earlier start.
    func restore() {
        standby = store.loadStandby().map { ($0, true) }
        if standby != nil { notices.standbyRestored() }
    }

    /// The node's eligibility under `settings`: their priority and preemption, the standby and
    /// the check's verdict (a witness runs no check).
    func eligibility(_ settings: NodeSettings) -> Eligibility {
        var e = settings.coreConfiguration.eligibility
        e.standby = standby != nil
        e.health = e.witness || settings.check == nil ? .unchecked : health.verdict
        return e
    }

    /// A reload: a check added counts from its first result (the role does not move on the
    /// reload itself); a check replaced or retimed keeps its verdict until the new one's
    /// results change it.
    func reloaded(from old: NodeSettings, to new: NodeSettings) {
        if old.check == nil, new.check != nil { health = HealthState(added: true) }
    }

    /// `quorumctl standby on|off [--until-restart]`: the line for the operator, and whether
    /// anything changed. A persistent change is on disk before it takes effect.
    func setStandby(on: Bool, untilRestart: Bool, name: String) throws(StateStore.Failure) -> (line: String, changed: Bool) {
        if on {
            let since = standby?.since ?? BootClock.wallClockMilliseconds()
            if !untilRestart { try store.saveStandby(since: since) } else if standby?.persistent == true { try store.saveStandby(since: nil) }
            let was = standby != nil
            standby = (since, !untilRestart)
            notices.standbyChanged(on: true, persistent: !untilRestart)
            let kept = untilRestart ? "until the next restart" : "across restarts"
            return (was ? "\(name) stays in standby (\(kept))" : "\(name) is in standby (\(kept)): it votes but may not be master", true)
        }
        guard standby != nil else { return ("\(name) is not in standby", false) }
        try store.saveStandby(since: nil)
        standby = nil
        notices.standbyChanged(on: false, persistent: false)
        return ("\(name) is out of standby: it may be master again (it takes the role back only by a higher priority)", true)
    }

    /// A check run ended: its result counts toward the verdict; only a change is logged.
    /// Returns whether the verdict changed.
    func checkFinished(_ check: HealthCheckSettings, passed: Bool, result: String, output: String?, fullOutput: String,
                       startedAt: Int64, took: Duration) -> Bool {
        if !fullOutput.isEmpty { notices.checkOutput(fullOutput, result: result) }
        switch health.record(passed: passed, result: result, output: output, startedAt: startedAt, took: took, fall: check.fall, rise: check.rise) {
        case .passing(let first)?: notices.checkPassing(first: first)
        case .failing(let failures)?: notices.checkFailing(failures: failures, result: result, output: output)
        case nil: return false
        }
        return true
    }

    /// `QUORUM_CHECK_FAILURES`: failures in a row so far.
    var failuresInARow: Int { health.lastPassed == false ? health.consecutive : 0 }

    func checkReport(_ settings: NodeSettings) -> CheckReport? { settings.check.map { health.report($0) } }

    var standbyReport: StandbyReport {
        standby.map { StandbyReport(on: true, since: $0.since > 0 ? ISO8601.utc(millisecondsSinceEpoch: $0.since) : nil, persistent: $0.persistent) }
            ?? StandbyReport(on: false)
    }

    /// A warning when the members do not all say the same of preemption (`--preempt`,
    /// `--preempt-delay`): the master's own value applies, which surprises whoever set the
    /// other one (keepalived users learned `nopreempt` the hard way).
    static func preemptionWarning(name: String, own: Eligibility, peers: [QuorumInstance.PeerStatus]) -> String? {
        var values: [(String, Eligibility)] = own.witness ? [] : [(name, own)]
        for p in peers where p.state == .connected && p.isMember {
            if let e = p.eligibility, !e.witness { values.append((p.identity.name, e)) }
        }
        func text(_ e: Eligibility) -> String { e.preempt ? "yes after \(e.preemptDelay.secondsText)s" : "no" }
        guard Set(values.map { text($0.1) }).count > 1 else { return nil }
        let listed = values.sorted { $0.0 < $1.0 }.map { "\($0.0) \(text($0.1))" }.joined(separator: ", ")
        return "members differ on preemption (\(listed)); the master's own value applies"
    }
}
