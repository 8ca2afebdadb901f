import QuorumCore
import QuorumSimulator
import Testing

/// One node driven by hand: every input written out, every output checked.
struct Harness {
    var node: QuorumInstance
    var now = Instant.zero
    var log: [Directive] = []

    init(_ name: String = "B", birth: Int64 = 2_000, port: UInt16 = 7002, configure: (inout CoreConfiguration) -> Void = { _ in }, restored: PersistentState? = PersistentState()) {
        var c = CoreConfiguration(cluster: "test")
        configure(&c)
        node = QuorumInstance(configuration: c, identity: id(name, birth: birth, port: port), restored: restored, now: now, seed: 7)
    }

    @discardableResult
    mutating func handle(_ e: Event) -> [Directive] {
        let d = node.handle(e, now: now)
        log += d
        return d
    }

    @discardableResult
    mutating func advance(_ d: Duration) -> [Directive] {
        now = now + d
        return handle(.tick)
    }

    /// Lets `duration` pass in 10 ms steps; every 100 ms each peer in `talking` sends a
    /// heartbeat made by `beat` (default: a plain heartbeat that follows nobody).
    @discardableResult
    mutating func run(for duration: Duration, talking: [String] = [], beat: ((String, UInt64) -> Heartbeat)? = nil) -> [Directive] {
        var out: [Directive] = []
        let end = now + duration
        var sequence: UInt64 = 1000
        var nextBeat = now
        while now < end {
            now = min(now + .milliseconds(10), end)
            if now >= nextBeat {
                sequence += 1
                for p in talking {
                    let hb = beat?(p, sequence) ?? Heartbeat(epoch: 0, role: .slave, holding: nil, following: nil, sequence: sequence, echo: 0, membership: .bootstrap)
                    out += handle(.message(.heartbeat(hb), from: p))
                }
                nextBeat = now + .milliseconds(100)
            }
            out += handle(.tick)
        }
        return out
    }

    @discardableResult
    mutating func heartbeat(from peer: String, holding: UInt64? = nil, following: MasterClaim? = nil, epoch: UInt64 = 0, sequence: UInt64 = 1, echo: UInt64 = 0, stamp: MembershipStamp = .bootstrap) -> [Directive] {
        handle(.message(.heartbeat(Heartbeat(epoch: epoch, role: holding == nil ? .slave : .master, holding: holding, following: following, sequence: sequence, echo: echo, membership: stamp)), from: peer))
    }
}

func id(_ name: String, birth: Int64, port: UInt16, instance: UInt64? = nil) -> NodeIdentity {
    NodeIdentity(name: name, instance: instance ?? UInt64(port), address: "10.0.0.1", port: port, birth: birth)
}

extension [Directive] {
    var hooks: [HookRun] { compactMap { if case .runHook(let h) = $0 { h } else { nil } } }
    func sends(_ kind: String) -> [(Message, String)] {
        compactMap { if case .send(let m, let to) = $0, m.kind == kind { (m, to) } else { nil } }
    }
    var exitCode: Int32? { lazy.compactMap { if case .exit(let c) = $0 { c } else { nil } }.first }
}

@Suite("Roles, votes, leases and membership", .onOwnThread)
struct TransitionTests {
    @Test("a lone node announces itself several times and becomes master of one after the discovery window")
    func loneNodeBecomesMaster() {
        var h = Harness()
        h.handle(.tick)
        #expect(h.node.role == .discovering)
        h.run(for: .milliseconds(700))
        #expect(h.node.role == .discovering, "no master before the discovery window ends")
        let announcements = h.log.filter { if case .broadcast = $0 { true } else { false } }.count
        #expect(announcements >= 4, "repeated announcements in the first moments")
        h.run(for: .milliseconds(150))
        #expect(h.node.role == .master)
        #expect(h.now < Instant.zero + .seconds(2))
        #expect(h.log.hooks.map(\.role) == [.master], "straight to master: no slave hook first")
        #expect(h.node.status(now: h.now).epoch == 1)
    }

    @Test("a joining node that hears a master becomes slave at once, with one slave hook")
    func joinerBecomesSlave() {
        var h = Harness()
        h.handle(.tick)
        h.now = h.now + .milliseconds(5)
        h.handle(.linkUp(id("A", birth: 1_000, port: 7001)))
        h.heartbeat(from: "A", holding: 4, following: MasterClaim(name: "A", instance: 7001, epoch: 4), epoch: 4)
        #expect(h.node.role == .slave)
        #expect(h.node.currentMaster(now: h.now)?.name == "A")
        #expect(h.log.hooks.map(\.role) == [.slave])
        #expect(h.log.hooks.first?.epoch == 4)
        #expect(h.now - .zero < .milliseconds(200))
    }

    @Test("a vote is persisted before the reply that grants it, and granted once per epoch")
    func votePersistedBeforeReply() {
        var h = Harness("B", birth: 2_000, port: 7002)
        h.handle(.linkUp(id("A", birth: 1_000, port: 7001)))
        h.handle(.linkUp(id("C", birth: 3_000, port: 7003)))
        h.run(for: .milliseconds(900), talking: ["A", "C"])
        let d = h.handle(.message(.voteRequest(epoch: 5), from: "A"))
        let persistIndex = d.firstIndex { if case .persist(let s) = $0 { s.votedEpoch == 5 && s.votedFor == "A" } else { false } }
        let replyIndex = d.firstIndex { if case .send(.voteReply(5, true), "A") = $0 { true } else { false } }
        #expect(persistIndex != nil && replyIndex != nil && persistIndex! < replyIndex!)
        // The same epoch for another candidate: refused.
        let again = h.handle(.message(.voteRequest(epoch: 5), from: "C"))
        #expect(again.contains { if case .send(.voteReply(_, false), "C") = $0 { true } else { false } })
        #expect(h.node.persistent.votedFor == "A")
    }

    @Test("a node votes only for its wanted master, the best alive member")
    func votesOnlyForBest() {
        var h = Harness("B", birth: 2_000, port: 7002)
        h.handle(.linkUp(id("A", birth: 1_000, port: 7001)))
        h.handle(.linkUp(id("C", birth: 3_000, port: 7003)))
        h.run(for: .milliseconds(700), talking: ["A", "C"])
        let d = h.handle(.message(.voteRequest(epoch: 3), from: "C"))
        #expect(d.contains { if case .send(.voteReply(_, false), "C") = $0 { true } else { false } })
    }

    @Test("a voter that still hears a live master defers its vote until its promise ends")
    func voteDeferredWhileMasterAlive() {
        var h = Harness("C", birth: 3_000, port: 7003)
        h.handle(.linkUp(id("A", birth: 1_000, port: 7001)))
        h.handle(.linkUp(id("B", birth: 2_000, port: 7002)))
        let a1 = MasterClaim(name: "A", instance: 7001, epoch: 1)
        h.run(for: .seconds(1), talking: ["A", "B"]) { p, seq in
            Heartbeat(epoch: 1, role: p == "A" ? .master : .slave, holding: p == "A" ? 1 : nil, following: a1, sequence: seq, echo: 0, membership: .bootstrap)
        }
        #expect(h.node.currentMaster(now: h.now)?.name == "A")
        let lastFromA = h.now
        // A goes silent; B (which sees A as dead) asks for votes 300 ms later.
        h.now = h.now + .milliseconds(300)
        h.heartbeat(from: "B", epoch: 1, sequence: 2)
        let early = h.handle(.message(.voteRequest(epoch: 2), from: "B"))
        #expect(early.sends("voteReply").isEmpty, "no answer while the promise to A holds")
        // Keep B alive; the promise to A ends 600 ms after its last heartbeat.
        var granted: Instant?
        for step in 1...40 {
            h.now = h.now + .milliseconds(10)
            let d = h.heartbeat(from: "B", epoch: 2, sequence: UInt64(2 + step))
            if d.contains(where: { if case .send(.voteReply(2, true), "B") = $0 { true } else { false } }) { granted = h.now; break }
        }
        #expect(granted != nil)
        #expect(granted.map { $0 >= lastFromA + .milliseconds(500) } == true, "not before the promise ended")
    }

    @Test("a master whose lease ends steps down with QUORUM_ROLE=no-quorum before any voter's promise ends")
    func leaseExpiryStepsDown() {
        var h = Harness("A", birth: 1_000, port: 7001)
        h.handle(.linkUp(id("B", birth: 2_000, port: 7002)))
        h.handle(.linkUp(id("C", birth: 3_000, port: 7003)))
        h.run(for: .milliseconds(800), talking: ["B", "C"])
        h.handle(.message(.voteReply(epoch: 1, granted: true), from: "B"))
        #expect(h.node.role == .master)
        let electedAt = h.now
        // B and C keep talking but stop acknowledging (they no longer hear A: a one-way cut).
        var steppedDown: Instant?
        for step in 1...100 {
            h.now = h.now + .milliseconds(10)
            h.heartbeat(from: "B", epoch: 1, sequence: UInt64(step))
            h.heartbeat(from: "C", epoch: 1, sequence: UInt64(step))
            if h.node.role != .master { steppedDown = h.now; break }
        }
        #expect(steppedDown != nil)
        // The voters' promise lasts electionTimeout from when they granted: after electedAt.
        #expect(steppedDown! < electedAt + h.node.configuration.timing.electionTimeout)
        #expect(!h.node.isMaster(now: h.now))
        let last = h.log.hooks.last
        #expect(last?.role == .slave || last?.role == .noQuorum)
        #expect(last?.previousRole == .master)
        #expect(last?.cause == .leaseExpired)
    }

    @Test("a paused master does not report itself master once its lease has ended")
    func pausedMasterKnowsOnResume() {
        var h = Harness("A", birth: 1_000, port: 7001)
        h.handle(.linkUp(id("B", birth: 2_000, port: 7002)))
        h.handle(.linkUp(id("C", birth: 3_000, port: 7003)))
        h.run(for: .milliseconds(800), talking: ["B", "C"])
        h.handle(.message(.voteReply(epoch: 1, granted: true), from: "B"))
        #expect(h.node.isMaster(now: h.now))
        // SIGSTOP for 5 s, then the first thing asked is its status.
        let resumed = h.now + .seconds(5)
        #expect(!h.node.isMaster(now: resumed), "a pure query already knows the lease is over")
        h.now = resumed
        h.handle(.tick)
        #expect(h.node.status(now: h.now).role != .master)
    }

    @Test("a master hands over to a better node only after its slave hook finished")
    func plannedHandoverWaitsForHook() {
        var h = Harness("B", birth: 2_000, port: 7002)
        h.handle(.linkUp(id("C", birth: 3_000, port: 7003)))
        h.run(for: .milliseconds(800), talking: ["C"])
        h.handle(.message(.voteReply(epoch: 1, granted: true), from: "C"))
        #expect(h.node.role == .master)
        // An older node arrives (a healed partition) and follows the master: it is admitted,
        // then the master steps down for it.
        h.handle(.linkUp(id("A", birth: 1_000, port: 7001)))
        let following = MasterClaim(name: "B", instance: 7002, epoch: 1)
        h.heartbeat(from: "A", following: following, epoch: 0, stamp: h.node.membershipStamp)
        h.heartbeat(from: "C", following: following, epoch: 1, echo: 1, stamp: h.node.membershipStamp)
        #expect(h.node.memberNames.contains("A"), "admitted once its own list was on a quorum")
        let d = h.heartbeat(from: "A", following: following, epoch: 0, sequence: 2, stamp: h.node.membershipStamp)
        let hook = (h.log.hooks.last)!
        #expect(hook.role == .slave && hook.previousRole == .master && hook.cause == .handover)
        #expect(d.sends("resign").isEmpty && h.log.sends("resign").isEmpty, "no resign while the hook runs")
        #expect(h.node.heldEpoch == 1, "it still holds its epoch, so no one else can be elected")
        let done = h.handle(.hookFinished(hook.id))
        #expect(Set(done.sends("resign").map(\.1)) == ["A", "C"])
        #expect(h.node.heldEpoch == nil)
    }

    @Test("a leaving master says goodbye only after its hook, then exits 0")
    func leavingMasterOrder() {
        var h = Harness("A", birth: 1_000, port: 7001)
        h.handle(.linkUp(id("B", birth: 2_000, port: 7002)))
        h.run(for: .milliseconds(800), talking: ["B"])
        h.handle(.message(.voteReply(epoch: 1, granted: true), from: "B"))
        #expect(h.node.role == .master)
        let d = h.handle(.leaveRequested)
        let hook = d.hooks.last!
        #expect(hook.role == .dispatched && hook.previousRole == .master)
        #expect(d.sends("bye").isEmpty && d.exitCode == nil)
        let after = h.handle(.hookFinished(hook.id))
        #expect(after.sends("bye").map(\.1) == ["B"])
        #expect(after.exitCode == 0)
    }

    @Test("with on-quorum-loss dispatch a node in a minority leaves and exits 3")
    func dispatchOnQuorumLoss() {
        var h = Harness("C", birth: 3_000, port: 7003) { $0.onQuorumLoss = .dispatch }
        h.handle(.linkUp(id("A", birth: 1_000, port: 7001)))
        h.handle(.linkUp(id("B", birth: 2_000, port: 7002)))
        let a1 = MasterClaim(name: "A", instance: 7001, epoch: 1)
        h.run(for: .milliseconds(900), talking: ["A", "B"]) { p, seq in
            Heartbeat(epoch: 1, role: p == "A" ? .master : .slave, holding: p == "A" ? 1 : nil, following: a1, sequence: seq, echo: 0, membership: .bootstrap)
        }
        #expect(h.node.role == .slave)
        h.handle(.linkDown(name: "A", instance: 7001, .refused))
        let d = h.handle(.linkDown(name: "B", instance: 7002, .refused))
        #expect(d.exitCode == 3)
        #expect(h.node.role == .dispatched)
    }

    @Test("expected-nodes: no master until that many nodes were seen")
    func expectedNodesGuard() {
        var h = Harness("A", birth: 1_000, port: 7001) { $0.expectedNodes = 3 }
        h.run(for: .seconds(3))
        #expect(h.node.role != .master)
        h.handle(.linkUp(id("B", birth: 2_000, port: 7002)))
        h.run(for: .seconds(1), talking: ["B"])
        #expect(h.node.role != .master)
        #expect(h.log.sends("voteRequest").isEmpty)
        let d = h.handle(.linkUp(id("C", birth: 3_000, port: 7003)))
        #expect(Set(d.sends("voteRequest").map(\.1)) == ["B", "C"], "the third node seen starts the election at once")
    }

    @Test("tie-breaker: in a 2|2 split only the half holding the best member keeps quorum")
    func tieBreaker() {
        func run(tieBreaker: Bool) -> (ab: [String], cd: [String]) {
            var config = CoreConfiguration(cluster: "test")
            config.tieBreaker = tieBreaker
            var c = SimulatedCluster(nodes: [("A", 1), ("B", 2), ("C", 3), ("D", 4)], configuration: config)
            for n in ["A", "B", "C", "D"] { c.start(n); c.run(for: .milliseconds(20)) }
            _ = c.run(until: .seconds(3)) { $0.allAgree(on: "A") }
            c.partition([["A", "B"], ["C", "D"]])
            c.run(for: .seconds(3))
            #expect(c.violations.isEmpty)
            return (["A", "B"].filter { c.status($0)?.quorate == true }, ["C", "D"].filter { c.status($0)?.quorate == true })
        }
        let with = run(tieBreaker: true)
        #expect(with.ab == ["A", "B"] && with.cd.isEmpty)
        let without = run(tieBreaker: false)
        #expect(without.ab.isEmpty && without.cd.isEmpty)
    }

    @Test("a candidate asks a member whose link comes up during its candidacy")
    func candidateAsksLateLink() {
        var h = Harness("A", birth: 1_000, port: 7001)
        h.handle(.linkUp(id("B", birth: 2_000, port: 7002)))
        h.handle(.linkUp(id("C", birth: 3_000, port: 7003)))
        h.run(for: .seconds(1), talking: ["B", "C"])
        // Every link is cut, then closed by the kernel: A has no quorum.
        h.run(for: .seconds(1))
        h.handle(.linkDown(name: "B", instance: 7002, .unreachable))
        h.handle(.linkDown(name: "C", instance: 7003, .unreachable))
        #expect(h.node.status(now: h.now).quorate == false)
        // C comes back first: A (the best) campaigns and can only ask C.
        var asked: [(Message, String)] = h.handle(.linkUp(id("C", birth: 3_000, port: 7003))).sends("voteRequest")
        for _ in 0..<50 where asked.isEmpty { asked = h.advance(.milliseconds(10)).sends("voteRequest") }
        #expect(asked.map(\.1) == ["C"])
        guard case .voteRequest(let epoch)? = asked.first?.0 else { Issue.record("no vote request"); return }
        // B's link comes up while the candidacy runs: B is asked at once, in the same epoch.
        let late = h.handle(.linkUp(id("B", birth: 2_000, port: 7002))).sends("voteRequest")
        #expect(late.map(\.1) == ["B"])
        #expect(late.first.map { $0.0 == .voteRequest(epoch: epoch) } == true)
    }

    @Test("a crashed master's refused port releases the promise at once")
    func refusedPortIsEvidence() {
        var h = Harness("B", birth: 2_000, port: 7002)
        h.handle(.linkUp(id("A", birth: 1_000, port: 7001)))
        h.handle(.linkUp(id("C", birth: 3_000, port: 7003)))
        let a1 = MasterClaim(name: "A", instance: 7001, epoch: 1)
        h.run(for: .milliseconds(900), talking: ["A", "C"]) { p, seq in
            Heartbeat(epoch: 1, role: p == "A" ? .master : .slave, holding: p == "A" ? 1 : nil, following: a1, sequence: seq, echo: 0, membership: .bootstrap)
        }
        // The link closes: no conclusion yet, but an immediate reconnect probe.
        let closed = h.handle(.linkDown(name: "A", instance: 7001, .closed))
        #expect(closed.contains { if case .connect(let t) = $0 { t.name == "A" } else { false } })
        #expect(h.node.currentMaster(now: h.now)?.name == "A")
        // Refused: A's process is gone. B is now the best and campaigns at once.
        let refused = h.handle(.linkDown(name: "A", instance: 7001, .refused))
        #expect(h.node.currentMaster(now: h.now) == nil)
        #expect(refused.sends("voteRequest").map(\.1) == ["C"])
    }

    @Test("a lost node that restarts under its name re-enters in its place")
    func lostNodeReenters() {
        var h = Harness("A", birth: 1_000, port: 7001)
        h.handle(.linkUp(id("B", birth: 2_000, port: 7002)))
        h.handle(.linkUp(id("C", birth: 3_000, port: 7003)))
        h.run(for: .milliseconds(900), talking: ["B", "C"])
        h.handle(.linkDown(name: "C", instance: 7003, .refused))
        #expect(h.node.peerStatuses(now: h.now).first { $0.identity.name == "C" }?.state == .lost)
        h.handle(.linkUp(id("C", birth: 9_000, port: 7003, instance: 99)))
        let peers = h.node.peerStatuses(now: h.now)
        #expect(peers.filter { $0.identity.name == "C" }.count == 1)
        #expect(peers.first { $0.identity.name == "C" }?.identity.instance == 99)
        #expect(peers.first { $0.identity.name == "C" }?.state == .connected)
        #expect(h.node.status(now: h.now).clusterSize == 3)
    }

    @Test("forget removes a lost node from the cluster size; a connected one cannot be forgotten")
    func forget() {
        var c = SimulatedCluster(nodes: [("A", 1), ("B", 2), ("C", 3)])
        for n in ["A", "B", "C"] { c.start(n); c.run(for: .milliseconds(20)) }
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") } != nil)
        #expect(c.forget("C", on: "A") == .stillConnected)
        #expect(c.forget("Z", on: "A") == .unknown)
        c.kill("C")
        #expect(c.run(until: .seconds(2)) { $0.status("A")?.lost == 1 && $0.status("B")?.lost == 1 } != nil)
        #expect(c.forget("C", on: "B") == .forgotten)
        #expect(c.run(until: .seconds(1)) { $0.status("A")?.clusterSize == 2 && $0.status("B")?.clusterSize == 2 } != nil)
        #expect(c.peerState("C", seenBy: "A") == nil)
    }

    @Test("the epoch grows with every change of master and is never reused")
    func epochsGrow() {
        var c = SimulatedCluster(nodes: [("A", 1), ("B", 2), ("C", 3)])
        for n in ["A", "B", "C"] { c.start(n); c.run(for: .milliseconds(20)) }
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") } != nil)
        let e1 = c.status("B")!.epoch
        c.kill("A")
        #expect(c.run(until: .seconds(2)) { $0.allAgree(on: "B") } != nil)
        let e2 = c.status("C")!.epoch
        c.restart("A")
        #expect(c.run(until: .seconds(2)) { $0.status("A")?.role == .slave } != nil)
        c.kill("B")
        #expect(c.run(until: .seconds(2)) { $0.masters.count == 1 && $0.allAgree(on: $0.masters[0]) } != nil)
        let e3 = c.status("C")!.epoch
        #expect(e1 < e2 && e2 < e3)
        #expect(c.violations.isEmpty)
    }

    @Test("a restarted node is the youngest and does not take over from the current master")
    func restartedNodeIsYoungest() {
        var c = SimulatedCluster(nodes: [("A", 1), ("B", 2), ("C", 3)])
        for n in ["A", "B", "C"] { c.start(n); c.run(for: .milliseconds(20)) }
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") } != nil)
        c.kill("A")
        #expect(c.run(until: .seconds(2)) { $0.allAgree(on: "B") } != nil)
        c.restart("A")
        #expect(c.run(until: .seconds(2)) { $0.status("A")?.role == .slave && $0.allAgree(on: "B") } != nil)
        let aHooks = c.hooks.filter { $0.node == "A" }.suffix(1).map(\.run.role)
        #expect(aHooks == [.slave], "the restarted node joins as slave without becoming master first")
    }

    @Test("a newcomer joins an existing cluster as slave within 200 ms of starting")
    func newcomerJoinsFast() {
        var c = SimulatedCluster(nodes: [("A", 1), ("B", 2), ("C", 3), ("D", 4)])
        for n in ["A", "B", "C"] { c.start(n); c.run(for: .milliseconds(20)) }
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") } != nil)
        c.start("D")
        let joined = c.run(until: .seconds(1)) { $0.status("D")?.role == .slave && $0.status("D")?.master == "A" && $0.status("A")?.clusterSize == 4 }
        #expect(joined.map { $0 < .milliseconds(200) } == true, "joined after \(String(describing: joined))")
        #expect(c.hooks.filter { $0.node == "D" }.map(\.run.role) == [.slave])
    }

    @Test("two nodes that re-enter on the far side of a partition cannot form a second majority")
    func reentryCannotSplitBrain() {
        var c = SimulatedCluster(nodes: [("A", 1), ("B", 2), ("C", 3), ("D", 4), ("E", 5)])
        for n in ["A", "B", "C", "D", "E"] { c.start(n); c.run(for: .milliseconds(20)) }
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") } != nil)
        c.leave("D")
        c.leave("E")
        #expect(c.run(until: .seconds(1)) { $0.status("A")?.clusterSize == 3 } != nil)
        c.partition([["A", "B"], ["C", "D", "E"]])
        c.start("D")
        c.start("E")
        c.run(for: .seconds(3))
        #expect(c.masters == ["A"])
        #expect(c.status("C")?.quorate == false)
        #expect(c.violations.isEmpty)
        c.heal()
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") && $0.status("A")?.clusterSize == 5 } != nil)
    }
}

@Suite("Joins and re-entries leave the master alone", .onOwnThread)
struct StableMasterTests {
    static func settled(_ names: [String], metric: Metric = .age) -> SimulatedCluster {
        var config = CoreConfiguration(cluster: "test")
        config.metric = metric
        let ports: [String: UInt16] = ["A": 6004, "B": 6003, "C": 6002, "D": 6001, "E": 6000]
        var c = SimulatedCluster(nodes: names.map { ($0, ports[$0]!) }, configuration: config)
        for n in names.dropLast() { c.start(n); c.run(for: .milliseconds(30)) }
        return c
    }

    @Test("a node that joins or re-enters changes neither the master, nor its epoch, nor its hooks")
    func joinKeepsMaster() {
        var c = Self.settled(["A", "B", "C", "D"])
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") } != nil)
        let epoch = c.status("A")!.epoch
        let hooksBefore = c.hooks.filter { $0.node == "A" }.count
        c.start("D")
        #expect(c.run(until: .seconds(1)) { $0.status("D")?.role == .slave && $0.status("A")?.clusterSize == 4 } != nil)
        c.kill("C")
        c.run(for: .milliseconds(100))
        c.restart("C")
        #expect(c.run(until: .seconds(2)) { $0.status("C")?.role == .slave && $0.status("A")?.lost == 0 } != nil)
        c.run(for: .seconds(2))
        #expect(c.status("A")?.epoch == epoch, "epoch unchanged")
        #expect(c.masters == ["A"])
        #expect(c.hooks.filter { $0.node == "A" }.count == hooksBefore, "no hook ran on the master")
        #expect(c.violations.isEmpty)
    }

    @Test("a newcomer that is best by the metric goes straight to master, without a slave hook")
    func bestNewcomerTakesOver() {
        var c = Self.settled(["A", "B", "C", "D"], metric: .port)
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "C") } != nil)
        c.start("D")  // port 6001: the best
        let took = c.run(until: .seconds(2)) { $0.allAgree(on: "D") && $0.masters == ["D"] }
        #expect(took != nil)
        #expect(took.map { $0 < .milliseconds(200) } == true, "took \(String(describing: took))")
        #expect(c.hooks.filter { $0.node == "D" }.map(\.run.role) == [.master])
        #expect(c.violations.isEmpty)
    }

    @Test("status counts as lost the members known only from the membership, and a no-quorum hook names no master")
    func lostMembersAndNoQuorumHook() {
        var c = Self.settled(["A", "B", "C", "D", "E"])
        c.start("D")
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") && $0.status("A")?.clusterSize == 4 } != nil)
        c.kill("D")
        c.kill("A")
        c.kill("B")
        #expect(c.run(until: .seconds(2)) { $0.status("C")?.role == .noQuorum } != nil)
        c.kill("C")
        c.restart("C")  // knows A, B, D only from its saved membership
        c.run(for: .seconds(2))
        #expect(c.status("C")?.lost == 3)
        #expect(c.status("C")?.clusterSize == 4)
        let noQuorumHooks = c.hooks.filter { $0.run.role == .noQuorum }
        #expect(!noQuorumHooks.isEmpty && noQuorumHooks.allSatisfy { $0.run.master == nil })
    }
}

extension StableMasterTests {
    @Test("a vote held back by the voter's start-up quiet time still gives the new master a fresh lease",
          arguments: [200, 400, 600, 700])
    func deferredVoteKeepsLease(gapMilliseconds: Int64) {
        var c = SimulatedCluster(nodes: [("A", 1), ("B", 2)])
        c.start("A")
        c.run(for: .milliseconds(gapMilliseconds))
        c.start("B")
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") && $0.masters == ["A"] } != nil)
        let firstEpoch = c.status("A")?.epoch
        c.run(for: .seconds(2))
        #expect(firstEpoch != nil && c.status("A")?.epoch == firstEpoch, "no step-down and re-election")
        #expect(c.hooks.filter { $0.node == "A" }.map(\.run.role) == [.master])
    }
}

extension TransitionTests {
    /// Found by quorum-sim (seed 20665): a candidate paused past its deadline processed the
    /// replies waiting in its socket on resume and ran its master hook for a lease that had
    /// already ended, while another node was master.
    @Test("votes that arrive after the candidacy's deadline (a paused candidate) make no master")
    func lateVotesMakeNoMaster() {
        var h = Harness("A", birth: 1_000, port: 7001)
        h.handle(.linkUp(id("B", birth: 2_000, port: 7002)))
        h.handle(.linkUp(id("C", birth: 3_000, port: 7003)))
        h.run(for: .milliseconds(800), talking: ["B", "C"])
        #expect(h.log.sends("voteRequest").count == 2)
        // SIGSTOP for 1.5 s; on resume the replies are read first.
        h.now = h.now + .milliseconds(1500)
        h.handle(.message(.voteReply(epoch: 1, granted: true), from: "B"))
        h.handle(.message(.voteReply(epoch: 1, granted: true), from: "C"))
        #expect(h.node.role != .master)
        #expect(!h.log.hooks.contains { $0.role == .master })
    }
}

