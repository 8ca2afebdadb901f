import QuorumCore

/// Whether the world is whole, and the agreement check that follows each time it becomes so.
struct Wholeness: Sendable {
    var since: Instant? = nil
    var token = 0
    var agreed = false
    var checks = 0
}

/// How the world feeds the checker after every step: every process that is master by its
/// own clock, and whether the world is whole, for the agreement bound after every heal.
extension World {
    /// Every live process that holds the master role by its own clock, at global `now`.
    /// The membership and best member are worked out only when a tenure begins.
    func masterViews(detailed: Bool = false) -> [SafetyChecker.MasterView] {
        var views: [SafetyChecker.MasterView] = []
        for i in slots.indices where slots[i].isAlive {
            guard let node = slots[i].instance, let epoch = node.heldEpoch else { continue }
            let t = local(i)
            guard node.isMaster(now: t) else { continue }
            let p = pid(i)
            var view = SafetyChecker.MasterView(process: p, epoch: epoch, members: [], anchor: nil, cluster: node.membershipList.cluster)
            view.loneNewCluster = isLoneNewCluster(i)
            if detailed || !checker.isOpen(p, epoch: epoch) {
                view.members = node.memberNames
                // The tie-breaker's anchor: the first member of the list the master holds.
                view.anchor = node.membershipList.members.first?.name
            }
            views.append(view)
        }
        return views
    }

    /// A master whose every member started as a newcomer (no state, or after leaving) after
    /// the world's first master, and linked only with such newcomers that themselves linked
    /// only with such newcomers: by every sign a new cluster that never met the old one
    /// (documented, not a split of it: a node started alone, new nodes started behind a
    /// partition, or nodes that left started again and found each other first; its epoch
    /// must still exceed every earlier master's).
    ///
    /// Judged by process, not by name or slot: a process that has ended counts by what it
    /// did (a second process with a member's name that linked with a newcomer behind a
    /// partition and then stopped never met the old cluster: seed 86483), and a name or a
    /// slot may stand for a process of the old cluster as well.
    func isLoneNewCluster(_ i: Int) -> Bool {
        if isSplitNewCluster(i) { return true }
        guard let node = slots[i].instance, let first = firstMasterAt else { return false }
        let members = Set(node.memberNames)
        // The newcomers that never linked, directly or through others, with a process that was not one.
        var fresh = Set(processes.filter { $0.value.startedAsNewcomer && $0.value.since > first }.keys)
        // A process that has since said goodbye holds no cluster to be met through it: its
        // list is one its newcomers refuse when they left it too (seed 13592: every member
        // but one stalled in fsync left on quorum loss, and started again as a new cluster).
        let gone = Set(processes.filter { $0.value.left }.keys)
        while true {
            let keep = fresh.filter { processes[$0]!.linked.isSubset(of: fresh.union(gone)) }
            if keep == fresh { break }
            fresh = keep
        }
        // The master itself; another member by any process with its name that started apart
        // (a second process may bear a member's name: seeds 4197, 11132).
        let apartNames = Set(fresh.compactMap { processes[$0]?.name })
        return fresh.contains(node.identity.instance) && members.allSatisfy { $0 == slots[i].name || apartNames.contains($0) }
    }

    /// Master `i` just founded a cluster (its list's cluster is new): founded apart when no
    /// process of its list could reach, in either direction, or ever linked with, any running
    /// process that holds the list of another cluster that has a master now. Nodes that started as one brand-new cluster and were split before
    /// any master existed elect one on each side (docs/protocol.md; `--expected-nodes` guards
    /// against it, and the simulator draws it for a third of its schedules).
    mutating func noteFounding(_ i: Int) {
        guard let node = slots[i].instance else { return }
        let cluster = node.membershipList.cluster
        knownClusters.insert(cluster)
        let members = Set(node.memberNames)
        // Its side: the members the founder can reach (a brand-new list names every node seen
        // before a partition, those behind it too: seed 15736).
        let mine = slots.indices.filter {
            slots[$0].isAlive && members.contains(slots[$0].name)
                && ($0 == i || !isCut(i, $0))
        }
        let others = Set(masterViews().map(\.cluster).filter { $0 != cluster && $0 != 0 })
        guard !others.isEmpty else { return }
        // The processes that hold another such cluster's list.
        let theirs = slots.indices.filter { j in
            slots[j].status == .running && slots[j].instance.map { others.contains($0.membershipList.cluster) } == true
        }
        // Apart: cut off now, or never linked at all (discovery lost: seed 2637's newcomer
        // started into 100 % datagram loss and founded a cluster of one).
        func neverLinked(_ a: Int, _ b: Int) -> Bool {
            guard let pa = slots[a].instance?.identity.instance, let pb = slots[b].instance?.identity.instance else { return true }
            return processes[pa]?.linked.contains(pb) != true && processes[pb]?.linked.contains(pa) != true
        }
        let apart = mine.allSatisfy { a in
            theirs.allSatisfy { b in
                a != b && (isCut(a, b) || neverLinked(a, b))
            }
        }
        guard apart else { return }
        apartFoundings[cluster] = ApartFounding(at: now, processes: Set(mine.compactMap { slots[$0].instance?.identity.instance }))
        if trace.enabled { log("cluster \(cluster) founded by \(slots[i].name) apart from the others: a new cluster apart") }
    }

    /// A master of a cluster founded apart (`noteFounding`) whose processes have since linked
    /// only among themselves and with newcomers started after the founding: it never met the
    /// other cluster. Once it does, the rules for clusters that meet apply in full.
    func isSplitNewCluster(_ i: Int) -> Bool {
        guard let node = slots[i].instance, let f = apartFoundings[node.membershipList.cluster] else { return false }
        var fresh = f.processes.union(processes.filter { $0.value.startedAsNewcomer && $0.value.since > f.at }.keys)
        while true {
            let keep = fresh.filter { p in
                processes[p]!.firstLinked.allSatisfy { other, at in fresh.contains(other) || at <= f.at }
                    && processes[p]!.linked.allSatisfy { fresh.contains($0) || (processes[p]!.firstLinked[$0] ?? f.at) <= f.at }
            }
            if keep == fresh { break }
            fresh = keep
        }
        // Its list may name nodes of the other side, seen before the cut (seed 15736): they
        // count only once they link, which takes the master out of `fresh` above.
        return fresh.contains(node.identity.instance)
    }

    mutating func observe() {
        let views = masterViews()
        if firstMasterAt == nil, !views.isEmpty { firstMasterAt = now }
        checker.observeMasters(at: now, views)
        updateWholeness()
    }

    /// No cut, no datagram loss, every member's process running and free (not paused,
    /// suspended, in a slow fsync or a slow hook, not on a slow disk) but those whose host
    /// died for good, no second process with a member's name.
    func worldIsWhole() -> Bool {
        guard blocked.isEmpty, datagramLoss == 0, preferencesAtRest(), !waitsForExpectedNodes() else { return false }
        for s in slots {
            if s.duplicateOf != nil {
                if s.isAlive { return false }
                continue
            }
            if s.goneForGood && !s.isAlive { continue }
            guard s.status == .running, s.busyUntil == nil, !s.clock.isStopped else { return false }
            if let until = s.slowDiskUntil, now < until { return false }
            if let h = s.hooks.running, h.until - h.since >= .seconds(1) { return false }
        }
        return true
    }

    mutating func updateWholeness() {
        if worldIsWhole() {
            if whole.since == nil {
                whole.since = now
                whole.token += 1
                whole.agreed = false
                queue.push(at: now + options.agreementBound, .agreementDue(token: whole.token))
            }
            if !whole.agreed, agreed() {
                whole.agreed = true
                if let healed = healedAt, settleTime == nil { settleTime = now - healed }
            }
        } else if whole.since != nil {
            whole.since = nil
            whole.token += 1
        }
    }

    /// The world has been whole for the agreement bound: every node must have agreed on one
    /// master holding its lease within it.
    mutating func agreementDue(_ token: Int) {
        guard token == whole.token, let since = whole.since else { return }
        whole.checks += 1
        if !whole.agreed {
            checker.record(.agreement, at: now, "whole since \(since), yet after \(options.agreementBound) no agreement on one master: \(views())")
            if trace.enabled { for i in primaries { log("state: \(slots[i].instance?.debugSummary(now: local(i)) ?? "-")") } }
        }
    }

    func views() -> String {
        primaries.map { i in
            let s = slots[i]
            guard s.isAlive, let node = s.instance else { return "\(s.name)=\(s.status)" }
            return "\(s.name):\(node.role.rawValue)→\(node.currentMaster(now: local(i))?.name ?? "none")"
        }.joined(separator: " ")
    }

    /// Every member's process runs and names the same master, which holds its lease; the
    /// others are slaves.
    func agreed() -> Bool {
        var master: String? = nil
        var masters = 0
        for i in primaries where !(slots[i].goneForGood && !slots[i].isAlive) {
            guard slots[i].status == .running, let node = slots[i].instance, let m = node.currentMaster(now: local(i)) else { return false }
            if master == nil { master = m.name } else if master != m.name { return false }
            switch node.role {
            case .master: masters += 1
            case .slave, .witness: break
            default: return false
            }
        }
        guard masters == 1, let m = masterIndex() else { return false }
        return slots[m].name == master
    }

    /// No master by design: with `--expected-nodes N`, hosts that died for good leave fewer
    /// than N to be seen, and no running node holds a cluster's list (every one left, or
    /// started without state), so a brand-new cluster waits for names it can no longer see
    /// (seed 5759; the operator lowers `--expected-nodes`, as with Corosync's expected votes).
    func waitsForExpectedNodes() -> Bool {
        guard let n = config.expectedNodes else { return false }
        let dead = primaries.filter { slots[$0].goneForGood && !slots[$0].isAlive }.count
        guard dead > 0, primaryCount - dead < n else { return false }
        return !primaries.contains { slots[$0].isAlive && slots[$0].instance.map { $0.membershipStamp != .bootstrap } == true }
    }

    /// After the final heal and `settle`, every node agrees on one master.
    mutating func checkLiveness() {
        if waitsForExpectedNodes() { return }
        // Nodes that dispatched themselves on quorum loss after the final heal (policy
        // `dispatch`) have left for good; the check is about the nodes still running.
        let running = primaries.filter { slots[$0].status == .running }
        let byPolicy = primaries.filter { slots[$0].status == .stopped && slots[$0].lastExit == 3 }
        // A host that died for good stays dead: the others must agree without it.
        let dead = primaries.filter { slots[$0].goneForGood && !slots[$0].isAlive }.count
        if running.isEmpty && byPolicy.count + dead == primaryCount { return }
        guard running.count + byPolicy.count + dead == primaryCount else {
            checker.record(.liveness, at: now, "nodes missing after the final heal: \(views())")
            return
        }
        let claims = running.compactMap { slots[$0].instance?.currentMaster(now: local($0)) }
        let roles = running.compactMap { slots[$0].instance?.role }
        if claims.count != running.count || Set(claims.map(\.name)).count != 1 || masterIndex() == nil
            || roles.filter({ $0 == .master }).count != 1 || !roles.allSatisfy({ $0 == .master || $0 == .slave || $0 == .witness }) {
            checker.record(.liveness, at: now, "no agreement on one master \(options.settle) after the final heal: \(views())")
            if trace.enabled { for i in running { log("state: \(slots[i].instance?.debugSummary(now: local(i)) ?? "-")") } }
        }
    }

    /// A master that steps down for its lease or its quorum while, for a whole election
    /// timeout, a quorum of its plain list (the tie-breaker's half included) ran freely and
    /// linked to it both ways, and, long enough for its acknowledgement to have reached the
    /// master, followed this tenure and held its list: a needless change of master (hole 8's
    /// blink). Judged only where nothing could excuse it.
    mutating func checkStepDown(of i: Int, epoch: UInt64, cause: RoleChangeCause) {
        guard let node = slots[i].instance, node.previousMemberNames == nil else { return }
        let since = now - config.timing.electionTimeout
        func free(_ j: Int) -> Bool {
            slots[j].status == .running && slots[j].disturbedAt < since && slots[j].runningSince < since
                && (slots[j].slowDiskUntil.map { $0 < since } ?? true) && !slots.contains { $0.duplicateOf == j && $0.isAlive }
        }
        func linked(_ a: Int, _ b: Int) -> Bool {
            [Pair(from: a, to: b), Pair(from: b, to: a)].allSatisfy { !blocked.contains($0) && (lastBlocked[$0].map { $0 < since } ?? true) }
        }
        guard free(i) else { return }
        let me = slots[i].name
        let members = node.memberNames
        // A follower acknowledges the master with a heartbeat that echoes one of this tenure's:
        // it sends one at once when it starts following and one every interval after, so a
        // free, linked master has one within two intervals. A follower of a moment ago (seed
        // 16242: four members followed a master elected 2 ms earlier) backs no lease yet.
        let acknowledgedBy = now - config.timing.heartbeatInterval * 2
        let tenure = MasterClaim(name: me, instance: node.identity.instance, epoch: epoch)
        var present: Set<String> = [me]
        for name in members where name != me {
            guard let j = slots.indices.first(where: { slots[$0].name == name && slots[$0].isPrimary }),
                  free(j), linked(i, j), let peer = slots[j].instance,
                  peer.currentMaster(now: local(j)) == tenure, slots[j].followed == tenure, slots[j].followedSince <= acknowledgedBy,
                  peer.membershipStamp == node.membershipStamp else { continue }
            present.insert(name)
        }
        let best = node.membershipList.members.first?.name
        // The tie-breaker's half counts only while no goodbye is pending (the counted members
        // are the whole list), as in the core.
        let wholeList = members.count == node.membershipList.members.count
        let quorum = present.count * 2 > members.count
            || (config.tieBreaker && wholeList && present.count * 2 == members.count && best.map { present.contains($0) } == true)
        if quorum {
            checker.record(.needlessStepDown, at: now, "\(pid(i)) stepped down as master of epoch \(epoch) (\(cause.rawValue)) while \(present.sorted()) of its \(members.count) members were linked, free and following it")
        }
    }
}
