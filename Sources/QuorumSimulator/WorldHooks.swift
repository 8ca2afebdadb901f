import QuorumCore

/// The hooks of each simulated process: queued through the core's `HookQueue` (gated by the
/// lease, told the epoch of their start), each taking a drawn time, and checked when a master
/// hook starts.
extension World {
    /// The hooks of one process: the core's `HookQueue`, or a plain FIFO without the gate for
    /// the planted hole `staleMasterHook`.
    struct HookSlot {
        var queue = HookQueue()
        var ungated: [HookRun] = []
        var running: (run: HookRun, since: Instant, until: Instant)? = nil
        /// The process was paused, suspended or cut off while `running` ran: a step-down it
        /// was making is a failure from then on, not a planned handover (docs/protocol.md,
        /// "On a pause").
        var failedDuringRun = false
    }

    /// When no hook runs: starts the next one the queue allows, and reports each skipped one.
    mutating func pumpHooks(_ i: Int) {
        guard slots[i].status == .running, slots[i].busyUntil == nil, slots[i].hooks.running == nil, let node = slots[i].instance else { return }
        var start: HookRun? = nil
        var skipped: [(HookRun, String)] = []
        if options.plantedHole == .staleMasterHook {
            if !slots[i].hooks.ungated.isEmpty { start = slots[i].hooks.ungated.removeFirst() }
        } else {
            let t = local(i)
            let next = slots[i].hooks.queue.next(mayStart: { node.mayStartHook($0, now: t) }, prepare: { node.preparedHook($0, now: t) })
            start = next.start
            skipped = next.skipped
        }
        if let run = start { startHook(i, run) }
        let gen = slots[i].generation
        for (run, why) in skipped where slots[i].generation == gen {
            if trace.enabled { log("\(slots[i].name) skips hook \(run.role.rawValue) epoch \(run.epoch): \(why)") }
            deliver(.hookFinished(run.id), to: i)
        }
    }

    mutating func startHook(_ i: Int, _ run: HookRun) {
        let took = hookTime()
        slots[i].hooks.running = (run, now, now + took)
        // A hook that starts while a live peer cannot hear its process is run by a failed
        // node as much as one cut off while it runs (`markHooksCutOff`): that peer cannot hear
        // it hold its epoch, so its promise lapses and it may elect without waiting (seed
        // 67018: a master cut off with a minority, then asked to leave).
        slots[i].hooks.failedDuringRun = slots.indices.contains { j in j != i && slots[j].isAlive && blocked.contains(Pair(from: i, to: j)) }
        hookLog.append((now, slots[i].name, run))
        // What the hook is told, when it starts.
        checker.epochReported(at: now, by: pid(i), epoch: run.epoch, what: "\(run.role.rawValue) hook")
        if trace.enabled { log("\(slots[i].name) starts hook \(run.role.rawValue) epoch \(run.epoch) (\(run.cause.rawValue)), \(took)") }
        if run.role == .master, let node = slots[i].instance {
            let me = pid(i)
            let holds = node.isMaster(now: local(i)) && node.heldEpoch == run.epoch
            let lone = isLoneNewCluster(i) || checker.isLoneTenure(me)
            let others = lone ? [] : masterViews().filter { !$0.loneNewCluster && !checker.isLoneTenure($0.process) }.map(\.process).filter { $0 != me }
            let steppingDown = lone ? [] : slots.indices.filter { j in
                guard slots[j].isAlive, !slots[j].hooks.failedDuringRun, let r = slots[j].hooks.running?.run else { return false }
                return r.previousRole == .master && (r.cause == .handover || r.cause == .leaving)
            }.map(pid).filter { !checker.lastTenureWasLone($0) }
            checker.masterHookStarted(at: now, by: me, epoch: run.epoch, holdsLease: holds, otherMasters: others, steppingDown: steppingDown,
                                      cluster: node.membershipList.cluster, lone: lone)
            if let pf = pendingFailover {
                let d = now - pf.since
                if pf.kind == "crash" { crashFailovers.append(d) } else { leaveHandovers.append(d) }
                pendingFailover = nil
            }
        }
        queue.push(at: now + took, .hookDone(node: i, generation: slots[i].generation, id: run.id))
    }

    mutating func hookTime() -> Duration {
        if let maximum = options.maximumHookTime {
            return .nanoseconds(Int64.random(in: 0...maximum.nanosecondsClamped, using: &rng))
        }
        switch rng.next() % 100 {
        case 0..<85: return .microseconds(Int64.random(in: 0...25_000, using: &rng))
        case 85..<95: return .milliseconds(Int64.random(in: 25...400, using: &rng))
        default:
            guard options.faultKinds.contains(.slowHook), now < faultWindowEnd else {
                return .microseconds(Int64.random(in: 0...25_000, using: &rng))
            }
            trace.count(.slowHook)
            return .milliseconds(Int64.random(in: 1000...4000, using: &rng))
        }
    }
}
