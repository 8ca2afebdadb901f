import QuorumCore

/// The operator's preferences in a schedule (issue 14): priorities and preemption drawn per
/// node, a witness, standby switched on and off, health checks that fail and flap, and
/// planned step-downs. None of them may make two masters or break a planned handover's hook
/// order; the agreement checks require a master only while some member may be master.
extension World {
    /// Draws the preferences of a schedule from their own generator, so the schedule's faults
    /// are drawn as before the preferences existed.
    mutating func drawPreferences(seed: UInt64) {
        let kinds = options.faultKinds
        var r = SplitMix64(seed: seed ^ 0x5EED_0F_9EF5)
        let n = primaryCount
        if kinds.contains(.priority), r.next() % 2 == 0 {
            let preempt = r.next() % 3 != 0
            let delay = Duration.milliseconds(Int64.random(in: 0...1500, using: &r))
            for i in 0..<n {
                let priority: UInt8 = switch r.next() % 6 {
                case 0: 0
                case 1, 2: UInt8.random(in: 101...255, using: &r)
                default: 100
                }
                slots[i].preferences = Eligibility(priority: priority, preempt: preempt, preemptDelay: delay)
            }
            trace.count(.priority)
        }
        if kinds.contains(.witness), n >= 3, r.next() % 3 == 0 {
            slots[Int.random(in: 0..<n, using: &r)].preferences.witness = true
            trace.count(.witness)
        }
        // Someone may be master once the operator's switches are off.
        if !slots[0..<n].contains(where: { $0.preferences.priority > 0 && !$0.preferences.witness }) {
            let k = slots[0..<n].firstIndex { !$0.preferences.witness } ?? 0
            slots[k].preferences.priority = 100
            slots[k].preferences.witness = false
        }
        let checks = kinds.contains(.checkFlap) && r.next() % 2 == 0
        if checks { for i in 0..<n where !slots[i].preferences.witness { slots[i].healthy = true } }
        let low = Duration.milliseconds(1500).nanosecondsClamped
        func at() -> Instant { Instant(nanoseconds: Int64.random(in: low...max(low + 1, faultWindowEnd.nanoseconds), using: &r)) }
        func later(_ t: Instant, _ range: ClosedRange<Int64>) -> Instant { min(t + .milliseconds(Int64.random(in: range, using: &r)), faultWindowEnd) }
        if kinds.contains(.standby) {
            for _ in 0..<Int.random(in: 0...2, using: &r) {
                let i = Int.random(in: 0..<n, using: &r), t = at()
                queue.push(at: t, .fault(.standby(i, on: true)))
                queue.push(at: later(t, 200...3000), .fault(.standby(i, on: false)))
            }
        }
        if checks {
            for _ in 0..<Int.random(in: 1...3, using: &r) {
                let i = Int.random(in: 0..<n, using: &r)
                var t = at()
                // A flapping check: failing and passing again, a few times in a row.
                for _ in 0..<Int.random(in: 1...3, using: &r) {
                    queue.push(at: t, .fault(.health(i, passing: false)))
                    t = later(t, 100...1500)
                    queue.push(at: t, .fault(.health(i, passing: true)))
                    t = later(t, 50...800)
                }
            }
        }
        if kinds.contains(.stepDown) {
            for _ in 0..<Int.random(in: 0...3, using: &r) {
                let asker = Int.random(in: 0..<n, using: &r)
                let target: String? = r.next() % 2 == 0 ? nil : (r.next() % 8 == 0 ? "nobody" : slots[Int.random(in: 0..<n, using: &r)].name)
                queue.push(at: at(), .fault(.stepDown(asker, to: target, timeout: .milliseconds(Int64.random(in: 1000...2000, using: &r)))))
            }
        }
    }

    /// What process `i` says of itself now (a second process with a member's name has the
    /// member's settings).
    func eligibility(of i: Int) -> Eligibility {
        let home = slots[i].duplicateOf ?? i
        var e = slots[home].preferences
        e.standby = slots[i].standby
        if slots[home].healthy != nil {
            e.health = slots[i].reportedHealth.map { $0 ? .passing : .failing } ?? .unknown
        }
        return e
    }

    /// A check's first result comes a moment after the start; later ones when the check
    /// changes its mind (its fall and rise are the delays drawn here).
    mutating func scheduleCheckResult(_ i: Int) {
        guard slots[slots[i].duplicateOf ?? i].healthy != nil else { return }
        queue.push(at: now + .milliseconds(Int64.random(in: 20...300, using: &rng)), .checkResult(node: i, generation: slots[i].generation))
    }

    /// The check's verdict reaches process `i`.
    mutating func reportHealth(_ i: Int) {
        guard let healthy = slots[slots[i].duplicateOf ?? i].healthy, slots[i].reportedHealth != healthy else { return }
        slots[i].reportedHealth = healthy
        if trace.enabled { log("\(slots[i].name)'s check is now \(healthy ? "passing" : "failing")") }
        deliver(.eligibilityChanged(eligibility(of: i)), to: i)
    }

    mutating func applyPreference(_ fault: Fault) {
        switch fault {
        case .standby(let i, let on):
            guard slots[i].standby != on else { return }
            trace.fault(now, on ? .standby : nil, "standby \(on ? "on" : "off") on \(slots[i].name)")
            slots[i].standby = on
            deliver(.eligibilityChanged(eligibility(of: i)), to: i)
        case .health(let i, let passing):
            guard slots[i].healthy != nil, slots[i].healthy != passing else { return }
            trace.fault(now, passing ? nil : .checkFlap, "\(slots[i].name)'s check \(passing ? "passes again" : "fails")")
            slots[i].healthy = passing
            // Its fall or rise: a few runs of the check.
            queue.push(at: now + .milliseconds(Int64.random(in: 50...400, using: &rng)), .checkResult(node: i, generation: slots[i].generation))
        case .stepDown(let i, let target, let timeout):
            guard slots[i].status == .running else { return }
            trace.fault(now, .stepDown, "the operator asks \(slots[i].name) for a step-down\(target.map { " to \($0)" } ?? "")")
            deliver(.stepDownRequested(StepDownRequest(id: rng.next(), target: target, timeout: timeout)), to: i)
        default:
            break
        }
    }

    /// At the final heal the operator undoes every switch: standby off, checks passing.
    mutating func clearPreferences() {
        for i in primaries {
            slots[i].standby = false
            if slots[i].healthy != nil { slots[i].healthy = true }
            if slots[i].isAlive {
                reportHealth(i)
                deliver(.eligibilityChanged(eligibility(of: i)), to: i)
            }
        }
    }

    /// Whether the operator's switches are all off (no standby, every check passing as its
    /// node knows): only then must the cluster agree on a master.
    func preferencesAtRest() -> Bool {
        !primaries.contains { i in slots[i].standby || slots[i].healthy == false || (slots[i].healthy != nil && slots[i].reportedHealth != true) }
    }
}
