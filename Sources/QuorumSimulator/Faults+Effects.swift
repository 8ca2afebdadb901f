import QuorumCore

/// What each fault does to the world when its time comes (how a schedule draws them:
/// Faults.swift).
extension World {
    /// The running process that is master by its own clock, if any.
    func masterIndex() -> Int? {
        slots.indices.first { i in
            slots[i].status == .running && slots[i].instance.map { $0.heldEpoch != nil && $0.isMaster(now: local(i)) } == true
        }
    }

    /// A process cut off while its hook runs: a step-down it was making has failed from then
    /// on (its peers can no longer wait for it), it is no planned handover.
    mutating func markHooksCutOff() {
        for i in slots.indices where slots[i].hooks.running != nil
            && blocked.contains(where: { $0.from == i || $0.to == i }) {
            slots[i].hooks.failedDuringRun = true
        }
    }

    mutating func apply(_ fault: Fault) {
        noteDisturbances()
        applyFault(fault)
        noteDisturbances()
    }

    /// Records, before and after each fault, which directions are cut and which hosts are
    /// not running freely (for the needless step-down rule).
    mutating func noteDisturbances() {
        for p in blocked { lastBlocked[p] = now }
        for i in slots.indices where slots[i].status != .running || slots[i].clock.isStopped { slots[i].disturbedAt = now }
    }

    private mutating func applyFault(_ fault: Fault) {
        switch fault {
        case .crash(var i):
            let ofMaster = i < 0
            if ofMaster { i = masterIndex() ?? 0 }
            guard slots[i].isAlive else { return }
            trace.fault(now, ofMaster ? .crashMaster : .crash, "crash \(slots[i].name)\(ofMaster ? " (the master)" : "")")
            if masterIndex() == i { pendingFailover = (now, "crash", slots[i].name) }
            stop(i, status: .crashed)
        case .dieForGood(let i, let restartAt):
            guard slots[i].isAlive else { return }
            let members = masterIndex().flatMap { slots[$0].instance?.memberNames } ?? []
            // Someone else must still be allowed to be master (not a witness, nor priority 0).
            let heir = primaries.contains { j in j != i && members.contains(slots[j].name) && slots[j].preferences.priority > 0 && !slots[j].preferences.witness }
            guard firstMasterAt != nil, !slots.contains(where: \.goneForGood), members.count >= 3, heir else {
                // A brand-new cluster waits for its expected nodes (documented), and one host
                // gone for good per schedule, from a list of three or more that a master holds
                // now, leaves a quorum: otherwise the host comes back.
                apply(.crash(i))
                queue.push(at: restartAt, .fault(.restart(i, wipe: false)))
                return
            }
            trace.fault(now, nil, "the host of \(slots[i].name) dies for good")
            if masterIndex() == i { pendingFailover = (now, "crash", slots[i].name) }
            stop(i, status: .crashed)
            slots[i].goneForGood = true
        case .powerCut(let spared):
            trace.fault(now, nil, "power cut: every host but \(slots[spared].name)'s goes down")
            for j in primaries where j != spared && slots[j].isAlive { stop(j, status: .crashed) }
        case .restart(var i, var wipe):
            if i < 0 { i = primaries.first { slots[$0].status == .crashed && !slots[$0].noRestart && !slots[$0].goneForGood } ?? 0 }
            guard slots[i].status == .crashed, !slots[i].noRestart, !slots[i].goneForGood else { return }
            if mustWaitForTheForgetting(i) {
                queue.push(at: now + .milliseconds(200), .fault(.restart(i, wipe: wipe)))
                return
            }
            // A node without state that can hear no running member is by every sign a new
            // cluster of one, and forks this one (documented in docs/protocol.md, "A node
            // without state, alone", and scripted in EdgeHoleTests): random schedules wipe only
            // a node that can reach a running member.
            if wipe, !primaries.contains(where: { j in
                j != i && slots[j].status == .running && !isCut(i, j)
            }) { wipe = false }
            trace.fault(now, wipe ? .wipe : nil, "restart \(slots[i].name)\(wipe ? " with its state directory wiped" : "")")
            start(i, wipe: wipe)
        case .pause(let i):
            guard slots[i].status == .running else { return }
            trace.fault(now, .pause, "pause \(slots[i].name)")
            slots[i].status = .paused
            slots[i].hooks.failedDuringRun = slots[i].hooks.running != nil
        case .suspend(let i):
            guard slots[i].status == .running else { return }
            trace.fault(now, .suspend, "suspend \(slots[i].name)'s host")
            slots[i].status = .suspended
            slots[i].hooks.failedDuringRun = slots[i].hooks.running != nil
            if options.plantedHole == .stoppedClock {
                slots[i].clock.stop(at: now)
                scheduleWake(i)
            }
        case .resume(let i):
            guard slots[i].status == .paused || slots[i].status == .suspended else { return }
            trace.fault(now, nil, "resume \(slots[i].name) (its clock reads \(local(i)))")
            if slots[i].clock.isStopped {
                slots[i].clock.start(at: now)
                scheduleWake(i)
            }
            slots[i].status = .running
            proceed(i)
        case .clockJump(let i, let d):
            // A monotonic clock leaps forward only over time its host did not run (a VM
            // stalled or migrated): the host freezes for `d`, and its clock, which counts the
            // stall, reads `d` later on resume. A clock that leaps while its process runs
            // would shorten a voter's promise by the leap (docs/protocol.md, "Clock drift").
            guard slots[i].status == .running else { return }
            trace.fault(now, .clockJump, "\(slots[i].name)'s host stalls for \(d); its clock jumps forward by as much")
            slots[i].status = .suspended
            slots[i].hooks.failedDuringRun = slots[i].hooks.running != nil
            queue.push(at: now + d, .fault(.resume(i)))
        case .leave(let i):
            guard slots[i].status == .running else { return }
            trace.fault(now, .leave, "leave \(slots[i].name)")
            if masterIndex() == i { pendingFailover = (now, "leave", slots[i].name) }
            deliver(.leaveRequested, to: i)
        case .start(let i):
            guard slots[i].status == .stopped || (healedAt != nil && slots[i].status == .crashed), !slots[i].noRestart || healedAt != nil else { return }
            if mustWaitForTheForgetting(i) {
                // After the final heal every node is up: no one left knows of the forget, so
                // the operator does what quorumctl(1) says and removes its state first.
                if healedAt != nil, now >= healedAt! + .seconds(2) {
                    trace.fault(now, nil, "start \(slots[i].name) with its state directory removed (forgotten, and no running node knows it)")
                    start(i, wipe: true)
                    return
                }
                queue.push(at: now + .milliseconds(200), .fault(.start(i)))
                return
            }
            // One second process at a time: two of them, with two members' names, form a
            // quorum of names among themselves, which no node can tell from the real thing.
            if let p = slots[i].duplicateOf, !memberKnownAliveEverywhere(p)
                || slots.indices.contains(where: { $0 != i && slots[$0].duplicateOf != nil && slots[$0].isAlive }) {
                // The documented limit (docs/protocol.md, "Names"): a second process is told
                // from the member only where the member's running instance is known. Wait
                // until every running node knows it, or give up at the end of the faults.
                if now + .milliseconds(200) < faultWindowEnd { queue.push(at: now + .milliseconds(200), .fault(.start(i))) }
                return
            }
            if let p = slots[i].duplicateOf {
                trace.fault(now, .duplicate, "start a second process named \(slots[i].name) at \(slots[i].address):\(slots[i].port) (slot \(i), duplicating slot \(p))")
            } else if now > .zero {
                trace.fault(now, nil, "start \(slots[i].name)")
            }
            start(i)
        case .stopDuplicate(let i, let graceful):
            guard slots[i].isAlive else { return }
            trace.fault(now, nil, "\(graceful ? "stop (SIGTERM)" : "kill") the second process named \(slots[i].name) (slot \(i))")
            if graceful && slots[i].status == .running { deliver(.leaveRequested, to: i) } else { stop(i, status: .stopped) }
        case .forget(let i):
            let name = slots[i].name
            // The operator forgets a node only while its process is down, as quorumctl(1)
            // asks: another fault may have started it again since this one crashed it, and
            // forgetting a live node behind a cut lets each side count a quorum of its own
            // (docs/protocol.md, "Forgetting a live node"; seeds 85430, 97531).
            guard !slots[i].isAlive else {
                if trace.enabled { log("the operator does not forget \(name): its process runs") }
                return
            }
            // On the master, unless the master is the node to forget (a node never forgets itself).
            let master = masterIndex().flatMap { $0 == i ? nil : $0 }
            guard let on = master ?? primaries.first(where: { $0 != i && slots[$0].status == .running }) else { return }
            trace.fault(now, .forget, "the operator forgets \(name) on \(slots[on].name)")
            deliver(.forgetRequested(name: name), to: on)
            slots[i].forgotten = true
        case .splitJoin:
            // The master keeps one short of half of the running members; a node that never ran
            // starts on its side, so the master's list grows across the split.
            guard let m = masterIndex(), let newcomer = primaries.first(where: { slots[$0].generation == 0 }) else { return }
            var others = primaries.filter { $0 != m && $0 != newcomer && slots[$0].status == .running }
            others.shuffle(using: &rng)
            let keep = max(0, (others.count + 2) / 2 - 2)
            let side = [m] + others.prefix(keep) + [newcomer]
            let rest = primaries.filter { !side.contains($0) }
            trace.fault(now, .splitJoin, "split \(side.map { slots[$0].name }.joined(separator: ",")) | \(rest.map { slots[$0].name }.joined(separator: ",")), \(slots[newcomer].name) starts with the master")
            partition([side, rest])
            markHooksCutOff()
            start(newcomer)
        case .partition(let groups):
            trace.fault(now, .partition, "partition \(groups.map { $0.map { slots[$0].name }.joined(separator: ",") }.joined(separator: " | "))")
            partition(groups)
            markHooksCutOff()
        case .oneWay(let from, let to):
            trace.fault(now, .oneWay, "one-way: \(slots[to].name) stops hearing \(slots[from].name)")
            blocked.insert(Pair(from: from, to: to))
            markHooksCutOff()
        case .heal:
            if !blocked.isEmpty { trace.fault(now, nil, "heal") }
            blocked = []
        case .datagramLoss(let p):
            trace.fault(now, p > 0 ? .datagramLoss : nil, "datagram loss \(Int(p * 100))%")
            datagramLoss = p
        case .slowDisk(let i, let until):
            trace.fault(now, .slowDisk, "fsync is slow on \(slots[i].name) until \(until)")
            slots[i].slowDiskUntil = until
        case .standby, .health, .stepDown:
            applyPreference(fault)
        case .finalHeal:
            trace.fault(now, nil, "final heal: every node back, network whole")
            blocked = []
            datagramLoss = 0
            healedAt = now
            clearPreferences()
            // Second processes are killed first. A member whose name one of them held, or
            // which was refused its name (exit 2), is started by the operator a second later,
            // once its peers have seen the impostor's links close.
            var impostors: Set<String> = []
            for i in slots.indices where slots[i].duplicateOf != nil && slots[i].generation > 0 {
                impostors.insert(slots[i].name)
                if slots[i].isAlive { stop(i, status: .stopped) }
            }
            for i in primaries {
                slots[i].slowDiskUntil = nil
                switch slots[i].status {
                case .paused, .suspended: apply(.resume(i))
                case .crashed where slots[i].goneForGood:
                    break
                case .crashed, .stopped:
                    if slots[i].noRestart || impostors.contains(slots[i].name) || slots[i].forgotten {
                        queue.push(at: now + .seconds(1), .fault(.start(i)))
                    } else {
                        start(i)
                    }
                case .running: break
                }
            }
        }
    }
}

extension World {
    /// A forgotten node comes back with its state only while a running member it can reach
    /// holds a list newer than the one on its disk, from which it learns that it was taken
    /// out. One that returned while only nodes without that list were up (down, started
    /// since without state, or left and started again) could elect with them under its old
    /// list: the documented limit of `forget` (quorumctl(1), docs/protocol.md).
    func mustWaitForTheForgetting(_ i: Int) -> Bool {
        guard slots[i].forgotten, let old = slots[i].disk?.membership, old.stamp != .bootstrap else { return false }
        return !primaries.contains { j in
            guard j != i, slots[j].status == .running, !isCut(i, j),
                  let list = slots[j].instance?.membershipList else { return false }
            // A newer list of the forgotten node's own cluster (another cluster's says nothing).
            return list.stamp > old.stamp && list.isSameCluster(as: old)
        }
    }

    /// `true` when the member in slot `p` runs and every other running member has its
    /// current instance as a live peer.
    func memberKnownAliveEverywhere(_ p: Int) -> Bool {
        guard slots[p].status == .running, let me = slots[p].instance?.identity else { return false }
        for j in primaries where j != p && slots[j].isAlive {
            guard let node = slots[j].instance else { continue }
            let known = node.peerStatuses(now: local(j)).contains { $0.identity == me && $0.state == .connected }
            if !known { return false }
        }
        return true
    }
}
