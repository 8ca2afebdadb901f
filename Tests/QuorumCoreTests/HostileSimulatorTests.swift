import QuorumCore
import QuorumSimulator
import Testing

/// The checker's rules, each fed a hand-made bad situation, and the hostile world's faults.
@Suite("Safety checker")
struct SafetyCheckerTests {
    typealias Rule = SafetyChecker.Rule
    static let a = ProcessID(slot: 0, name: "A", instance: 1)
    static let b = ProcessID(slot: 1, name: "B", instance: 2)
    static let c = ProcessID(slot: 2, name: "C", instance: 3)
    static func t(_ ms: Int64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }
    static func view(_ p: ProcessID, _ epoch: UInt64, members: [String] = ["A", "B", "C"], best: String? = "A", cluster: UInt64 = 0) -> SafetyChecker.MasterView {
        SafetyChecker.MasterView(process: p, epoch: epoch, members: members, anchor: best, cluster: cluster)
    }

    func rules(_ checker: SafetyChecker) -> Set<Rule> { Set(checker.findings.map(\.rule)) }

    /// A checker where `p` was elected in `epoch` by itself and `voter`.
    func elected(_ checker: inout SafetyChecker, _ p: ProcessID, _ epoch: UInt64, by voter: ProcessID, at ms: Int64) {
        checker.voteGranted(at: Self.t(ms), by: p, epoch: epoch, candidate: p.name)
        checker.voteGranted(at: Self.t(ms), by: voter, epoch: epoch, candidate: p.name)
    }

    @Test("a clean succession of masters is no violation")
    func cleanSuccession() {
        var checker = SafetyChecker(tieBreaker: false)
        elected(&checker, Self.a, 1, by: Self.b, at: 0)
        checker.observeMasters(at: Self.t(1), [Self.view(Self.a, 1)])
        checker.masterHookStarted(at: Self.t(1), by: Self.a, epoch: 1, holdsLease: true, otherMasters: [], steppingDown: [])
        checker.epochReported(at: Self.t(1), by: Self.a, epoch: 1, what: "status")
        checker.observeMasters(at: Self.t(500), [])
        elected(&checker, Self.b, 2, by: Self.c, at: 600)
        checker.observeMasters(at: Self.t(601), [Self.view(Self.b, 2)])
        checker.masterHookStarted(at: Self.t(601), by: Self.b, epoch: 2, holdsLease: true, otherMasters: [], steppingDown: [])
        #expect(checker.findings.isEmpty, "\(checker.findings)")
    }

    @Test("two processes master of one epoch, even one after the other, are caught")
    func oneMasterPerEpoch() {
        var checker = SafetyChecker(tieBreaker: false)
        elected(&checker, Self.a, 3, by: Self.b, at: 0)
        checker.observeMasters(at: Self.t(1), [Self.view(Self.a, 3)])
        checker.observeMasters(at: Self.t(400), [])
        // A second process with A's name (another host) in the same epoch.
        let twin = ProcessID(slot: 5, name: "A", instance: 9)
        checker.voteGranted(at: Self.t(900), by: Self.c, epoch: 3, candidate: "A")
        checker.observeMasters(at: Self.t(901), [Self.view(twin, 3)])
        #expect(rules(checker).contains(.oneMasterPerEpoch))
    }

    @Test("two master tenures at one global instant are caught, whatever each believes")
    func twoMastersAtOnce() {
        var checker = SafetyChecker(tieBreaker: false)
        elected(&checker, Self.a, 1, by: Self.b, at: 0)
        elected(&checker, Self.c, 2, by: Self.b, at: 0)
        checker.observeMasters(at: Self.t(1), [Self.view(Self.a, 1), Self.view(Self.c, 2)])
        #expect(rules(checker).contains(.twoMastersAtOnce))
    }

    @Test("a process whose reported epoch goes down is caught; a hook's epoch counts too")
    func epochNeverDecreases() {
        var checker = SafetyChecker(tieBreaker: false)
        checker.epochReported(at: Self.t(0), by: Self.a, epoch: 2, what: "status")
        checker.epochReported(at: Self.t(1), by: Self.a, epoch: 2, what: "slave hook")
        #expect(checker.findings.isEmpty)
        checker.epochReported(at: Self.t(2), by: Self.a, epoch: 1, what: "slave hook")
        #expect(rules(checker) == [.epochDecreased])
        // Another process (a restart) starts its own sequence.
        var other = SafetyChecker(tieBreaker: false)
        other.epochReported(at: Self.t(0), by: Self.a, epoch: 2, what: "status")
        other.epochReported(at: Self.t(1), by: ProcessID(slot: 0, name: "A", instance: 7), epoch: 0, what: "status")
        #expect(other.findings.isEmpty)
    }

    @Test("a master, or a master hook, of an epoch not above an earlier master's is caught")
    func staleMasterEpoch() {
        var checker = SafetyChecker(tieBreaker: false)
        elected(&checker, Self.a, 5, by: Self.b, at: 0)
        checker.observeMasters(at: Self.t(1), [Self.view(Self.a, 5)])
        checker.observeMasters(at: Self.t(400), [])
        elected(&checker, Self.c, 4, by: Self.b, at: 900)
        checker.observeMasters(at: Self.t(901), [Self.view(Self.c, 4)])
        #expect(rules(checker).contains(.staleMasterEpoch))

        var hooks = SafetyChecker(tieBreaker: false)
        elected(&hooks, Self.a, 5, by: Self.b, at: 0)
        hooks.observeMasters(at: Self.t(1), [Self.view(Self.a, 5)])
        hooks.observeMasters(at: Self.t(400), [])
        hooks.masterHookStarted(at: Self.t(900), by: Self.c, epoch: 4, holdsLease: true, otherMasters: [], steppingDown: [])
        #expect(rules(hooks).contains(.staleMasterEpoch))
    }

    /// A cluster founded apart (a new cluster of one that met no one) took its first epoch from
    /// the wall clock: above every epoch taken before, but not above one taken elsewhere after
    /// it, which it cannot know; within each cluster epochs still only grow.
    @Test("a cluster founded apart is held to the epochs taken before it and its own, not to another's since")
    func clustersApart() {
        let lone = ProcessID(slot: 3, name: "D", instance: 4), again = ProcessID(slot: 3, name: "D", instance: 5)
        func run(foundingEpoch: UInt64, laterEpoch: UInt64) -> Set<Rule> {
            var checker = SafetyChecker(tieBreaker: false)
            checker.wallClockSpread = .milliseconds(10)
            checker.epochTaken(at: Self.t(0), by: Self.a, epoch: 500)
            elected(&checker, Self.a, 500, by: Self.b, at: 0)
            checker.observeMasters(at: Self.t(1), [Self.view(Self.a, 500, cluster: 1)])
            checker.epochTaken(at: Self.t(100), by: lone, epoch: foundingEpoch)
            checker.voteGranted(at: Self.t(100), by: lone, epoch: foundingEpoch, candidate: "D")
            var apart = Self.view(lone, foundingEpoch, members: ["D"], best: "D", cluster: 2)
            apart.loneNewCluster = true
            checker.observeMasters(at: Self.t(101), [Self.view(Self.a, 500, cluster: 1), apart])
            checker.observeMasters(at: Self.t(300), [])
            // The old cluster takes a wall-clock epoch after D's founding; D, started again with
            // its state, is master of its own cluster once more.
            checker.epochTaken(at: Self.t(400), by: Self.b, epoch: 2000)
            elected(&checker, Self.b, 2000, by: Self.c, at: 400)
            checker.observeMasters(at: Self.t(401), [Self.view(Self.b, 2000, cluster: 1)])
            checker.observeMasters(at: Self.t(700), [])
            checker.epochTaken(at: Self.t(900), by: again, epoch: laterEpoch)
            checker.voteGranted(at: Self.t(900), by: again, epoch: laterEpoch, candidate: "D")
            checker.observeMasters(at: Self.t(901), [Self.view(again, laterEpoch, members: ["D"], best: "D", cluster: 2)])
            return rules(checker)
        }
        #expect(run(foundingEpoch: 1000, laterEpoch: 1001).isEmpty)
        // Its founding below an epoch taken before it, or a later master of it below its own.
        #expect(run(foundingEpoch: 400, laterEpoch: 1001) == [.staleMasterEpoch])
        #expect(run(foundingEpoch: 1000, laterEpoch: 1000) == [.staleMasterEpoch, .oneMasterPerEpoch])
    }

    @Test("one physical slot voting for two candidates in one epoch is caught, across a restart")
    func doubleVote() {
        var checker = SafetyChecker(tieBreaker: false)
        checker.voteGranted(at: Self.t(0), by: Self.c, epoch: 2, candidate: "A")
        checker.voteGranted(at: Self.t(1), by: Self.c, epoch: 2, candidate: "A")
        checker.voteGranted(at: Self.t(1), by: Self.b, epoch: 2, candidate: "B")
        #expect(checker.findings.isEmpty)
        // The same host after a wiped restart: a new instance, the same lineage.
        checker.voteGranted(at: Self.t(2), by: ProcessID(slot: 2, name: "C", instance: 33), epoch: 2, candidate: "B")
        #expect(rules(checker) == [.doubleVote])
    }

    @Test("a master without a strict majority of granted votes is caught; a granter's name counts once")
    func quorumIsReal() {
        let five = ["A", "B", "C", "D", "E"]
        var checker = SafetyChecker(tieBreaker: false)
        checker.voteGranted(at: Self.t(0), by: Self.a, epoch: 1, candidate: "A")
        checker.voteGranted(at: Self.t(0), by: Self.b, epoch: 1, candidate: "A")
        // A second process named B (another host) grants too: still one name.
        checker.voteGranted(at: Self.t(0), by: ProcessID(slot: 7, name: "B", instance: 70), epoch: 1, candidate: "A")
        checker.observeMasters(at: Self.t(1), [Self.view(Self.a, 1, members: five)])
        #expect(rules(checker) == [.quorumNotReal])

        // Exactly half holding the best member, with the tie-breaker: a quorum.
        var tie = SafetyChecker(tieBreaker: true)
        tie.voteGranted(at: Self.t(0), by: Self.b, epoch: 1, candidate: "A")
        tie.observeMasters(at: Self.t(1), [Self.view(Self.a, 1, members: ["A", "B", "C", "D"], best: "A")])
        #expect(tie.findings.isEmpty)
        var tieWithoutBest = SafetyChecker(tieBreaker: true)
        tieWithoutBest.voteGranted(at: Self.t(0), by: Self.b, epoch: 1, candidate: "A")
        tieWithoutBest.observeMasters(at: Self.t(1), [Self.view(Self.a, 1, members: ["A", "B", "C", "D"], best: "C")])
        #expect(rules(tieWithoutBest) == [.quorumNotReal])
    }

    @Test("a master hook without the lease, or while another is master, is caught")
    func hookWithinLease() {
        var noLease = SafetyChecker(tieBreaker: false)
        noLease.masterHookStarted(at: Self.t(0), by: Self.a, epoch: 1, holdsLease: false, otherMasters: [], steppingDown: [])
        #expect(rules(noLease) == [.hookOutsideLease])
        var other = SafetyChecker(tieBreaker: false)
        other.masterHookStarted(at: Self.t(0), by: Self.a, epoch: 2, holdsLease: true, otherMasters: [Self.b], steppingDown: [])
        #expect(rules(other) == [.hookOutsideLease])
        var handover = SafetyChecker(tieBreaker: false)
        handover.masterHookStarted(at: Self.t(0), by: Self.a, epoch: 2, holdsLease: true, otherMasters: [], steppingDown: [Self.b])
        #expect(rules(handover) == [.handoverOverlap])
    }
}

/// The hostile world: plants are caught, crafted worlds fail the rules they should, and
/// clean schedules with each fault kind hold the guarantees.
@Suite("Hostile simulator", .serialized, .onOwnThread)
struct HostileSimulatorTests {
    static let abc: [(name: String, port: UInt16)] = [("A", 7001), ("B", 7002), ("C", 7003)]

    static func formed(_ hole: PlantedHole? = nil, seed: UInt64 = 1, maximumHookTime: Duration = .milliseconds(5)) -> SimulatedCluster {
        var c = SimulatedCluster(nodes: abc, seed: seed, maximumHookTime: maximumHookTime, trace: true, plantedHole: hole)
        for n in ["A", "B", "C"] { c.start(n); c.run(for: .milliseconds(20)) }
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") } != nil)
        return c
    }

    static func rules(_ c: SimulatedCluster) -> Set<String> { Set(c.violations.map(\.rule)) }

    /// The product's clock counts while the host is suspended, so a resumed master knows its
    /// lease has ended. A clock that stops (the planted hole) leaves it believing in its
    /// lease while another master is elected: two masters at one global instant.
    @Test("a master suspended for 3 s: caught with a clock that stops, safe with one that counts")
    func suspendedMaster() {
        for hole in [PlantedHole.stoppedClock, nil] {
            var c = Self.formed(hole)
            c.suspend("A")
            c.run(for: .seconds(3))
            c.resume("A")
            c.run(for: .milliseconds(100))
            if hole == nil {
                #expect(c.violations.isEmpty, "\(c.violations)")
                #expect(c.masters.count <= 1)
            } else {
                #expect(Self.rules(c).contains(SafetyChecker.Rule.twoMastersAtOnce.rawValue), "\(c.violations)")
            }
        }
    }

    /// A master hook queued behind a long slave hook, for a lease that has ended by the time
    /// it could start: the gate skips it; without the gate (the planted hole) it starts.
    @Test("a stale master hook: skipped by the gate, caught without it")
    func staleMasterHook() {
        var caught = 0
        for seed in UInt64(1)...8 {
            for hole in [PlantedHole.staleMasterHook, nil] {
                var c = Self.formed(hole, seed: seed, maximumHookTime: .seconds(3))
                c.kill("A")
                c.run(for: .milliseconds(60))
                c.partition([["B"], ["C"]])
                c.run(for: .seconds(4))
                if hole == nil {
                    #expect(c.violations.isEmpty, "seed \(seed): \(c.violations)")
                } else if Self.rules(c).contains(SafetyChecker.Rule.hookOutsideLease.rawValue) {
                    caught += 1
                }
            }
        }
        #expect(caught > 0)
    }

    /// A world that is whole yet cannot agree (every node waits for a fourth that never
    /// comes) fails the agreement bound after the heal.
    @Test("no agreement within the bound after the world became whole is caught")
    func agreementAfterHeal() {
        var config = CoreConfiguration(cluster: "test")
        config.expectedNodes = 4
        var c = SimulatedCluster(nodes: Self.abc, configuration: config)
        for n in ["A", "B", "C"] { c.start(n) }
        c.run(for: .seconds(3))
        #expect(Self.rules(c) == [SafetyChecker.Rule.agreement.rawValue], "\(c.violations)")
    }

    @Test("every agreement after a heal is checked, not only the final one")
    func agreementIsCheckedAfterEveryHeal() {
        var c = Self.formed()
        c.partition([["A"], ["B", "C"]])
        c.run(for: .seconds(2))
        c.heal()
        c.run(for: .seconds(3))
        #expect(c.violations.isEmpty, "\(c.violations)")
        // The check after the cluster formed was cancelled by the partition (a fault before
        // the bound); the one after the heal ran.
        #expect(c.agreementChecks == 1)
    }

    /// A second process with a member's name, started by mistake, is refused and exits 2;
    /// the cluster keeps one master throughout.
    @Test("a second process with a member's name does not make a second master")
    func duplicateName() {
        for birth in [nil, Int64(1_600_000_000_000)] {
            var c = Self.formed()
            let twin = c.startDuplicate(of: "B", port: 9001, birth: birth)
            c.run(for: .seconds(2))
            c.stopDuplicate(twin)
            c.run(for: .seconds(3))
            #expect(c.violations.isEmpty, "\(c.violations)")
            #expect(c.allAgree(on: "A"))
        }
    }

    @Test("a voter restarted with its state wiped never votes twice in an epoch")
    func wipedVoter() {
        for seed in UInt64(1)...5 {
            var c = Self.formed(seed: seed)
            c.kill("A")
            c.run(for: .milliseconds(300))
            c.kill("C")
            c.restart("C", wipe: true)
            c.run(for: .seconds(3))
            #expect(c.violations.isEmpty, "seed \(seed): \(c.violations)")
        }
    }

    /// The holes random schedules find, each from the first seed of all fault kinds that
    /// found it (`quorum-sim --plant NAME --schedules 2000` prints them): a wiped node's double
    /// vote first shows at seed 3; the tie-breaker during a change (hole 1) at seed 734, a
    /// change before the new master's own list (hole 2) at 784, the tie-breaker blink (hole 8)
    /// at 49, the tie-breaker judged by each node's view of the metric (hole 9) at 49. Hole 7
    /// (expected nodes forgotten) needs a host that dies for good and a reboot of the others:
    /// the forget kind draws that, and with crashes and forgets alone it shows at seed 4. Hole
    /// 10 (a node that left counts again in an older list) is rare in random schedules: it was
    /// found at seeds 13592 and 20908 of a 20,000-schedule run, and the second is the one here.
    /// Hole 11 (a node that slept through its discovery window founds alone on waking) was
    /// found once, at seed 45043 of a 30,000-schedule run, and is the one here.
    @Test("planted holes are caught by random schedules",
          arguments: [PlantedHole.duplicateNames, .lostStateEpoch, .stoppedClock, .staleMasterHook,
                      .tieBreakerDuringChange, .changeBeforeOwnList, .tieBreakerBlink, .tieBreakerBestByMetric, .expectedNodesForgotten,
                      .leftListRecounted, .stalledDiscovery])
    func plantedHolesAreCaught(_ hole: PlantedHole) {
        var options = SimulationOptions()
        options.plantedHole = hole
        var first: UInt64 = 1
        switch hole {
        case .stoppedClock: options.faultKinds = [.suspend]
        case .staleMasterHook: options.faultKinds = [.slowHook, .partition, .crashMaster, .pause]
        case .duplicateNames: options.faultKinds = [.duplicate]
        case .lostStateEpoch: first = 1
        case .tieBreakerDuringChange: first = 730
        case .changeBeforeOwnList: first = 780
        case .tieBreakerBlink: first = 45
        case .tieBreakerBestByMetric: first = 45
        case .expectedNodesForgotten: options.faultKinds = [.forget, .crash]
        case .leftListRecounted: first = 20899
        case .stalledDiscovery: first = 45040
        }
        let summary = runSchedules(count: 10, firstSeed: first, options: options)
        #expect(!summary.violations.isEmpty)
    }

    @Test("clean schedules with each new fault kind hold every guarantee",
          arguments: [FaultKind.suspend, .clockJump, .clockRate, .wipe, .slowDisk, .duplicate, .newcomer, .forget, .slowHook,
                      .priority, .witness, .standby, .checkFlap, .stepDown])
    func faultKindHoldsTheGuarantees(_ kind: FaultKind) {
        var options = SimulationOptions()
        options.faultKinds = [kind, .crash, .partition]
        let summary = runSchedules(count: 10, firstSeed: 500, options: options)
        #expect(summary.violations.isEmpty, "\(summary.violations.prefix(3))")
        #expect((summary.faultCounts[kind] ?? 0) > 0, "the kind was exercised")
    }

    /// Schedules that, with every fault kind drawn, once made two masters (or flagged a sound
    /// run): lone clusters whose members joined the real cluster's master one by one (442, 593,
    /// 767, 1870), new nodes behind a partition (4003, 5434), a restart after a goodbye that
    /// won a tie-breaker with the old list (1073), a forget during a suspend that reused an
    /// epoch (521), a lone election stalled by a slow fsync (3799), a win before the vote was
    /// on disk (7361), planned handovers whose old master was paused or cut off (43, 726) or
    /// that began as a lone cluster (152, 7127), a master stuck in fsync (1305), a node
    /// without state whose birth-time epoch came after a suspend (10154), a new cluster
    /// with a second process bearing a member's name (11132); wall-clock epochs that followed a
    /// clock's rate (4734, 38033); clusters founded apart judged against epochs taken elsewhere
    /// after their founding (14890, 38310, 45158, 57958, 77430, 92116); a follower of a moment
    /// ago counted as backing a lease (16242); a step-down hook started while cut off (67018);
    /// a member that founded a cluster apart followed as master under its old name (68003, a
    /// core fix); an operator who forgot a running node (85430, 97531); an ended second
    /// process that had started apart (86483); a brand-new cluster split before its first master,
    /// whose newcomer of the highest priority founded a second cluster behind the partition
    /// (864, the documented limit that --expected-nodes guards: the checker now tells it); a
    /// tie-breaker half that held "the best node" by its own view of ages after restarts
    /// (3717, 5502: the anchor is now the list's first member); a brand-new node that founded
    /// alone after two nodes it had seen said goodbye, with --expected-nodes (3959: a majority
    /// of the expected nodes is now needed); a newcomer that never heard anyone through lost
    /// datagrams (2637, founded apart); a founding vote from a node that had seen many more
    /// (3511: the vote now carries its list); a list lost on a link that outlived a cut, so two
    /// nodes refused each other for ever (1945, 281: a refusal sends the list again); a node
    /// back from a stall that stood again and again, in a higher epoch, against a master its
    /// voters followed (15252, 19933: a candidate yields to a working master it hears); a node
    /// that left and, back with a member that had been down, counted in that member's older
    /// list (20908, 13592: the node keeps the list it left and tells such a member); every
    /// member but one left on quorum loss and founded anew while the last was stalled (13592,
    /// the checker: processes that have left hold no cluster to meet); --expected-nodes with a
    /// host gone for good and only newcomers left (5759: no master by design); a member told
    /// that a node had left made newer lists still naming it, in which it counted (13544:
    /// the node counts itself out until taken out), a candidacy older than the list left
    /// (18242), a node back in the cluster that went on that counted itself out (16286,
    /// 18450), goodbyes heard in one cluster carried into another's list (1120), and every
    /// member left but one (146); a node whose first write stalled past its discovery window
    /// and founded a cluster of one before it took the link events queued meanwhile (45043);
    /// and a node back in the cluster that
    /// went on which told a member with an older list that it had left, so that member
    /// counted it out of the newer list too (35230: it sends its list instead). 7882, 36017,
    /// 40317 and 58941 made two masters with a rule tried and dropped: a goodbye said with no
    /// member linked kept the node's list, as a crash would (nodes that left on quorum loss
    /// behind a partition came back as members and elected beside the others).
    @Test("schedules that once found two masters with every fault kind drawn hold every guarantee",
          arguments: [UInt64(43), 152, 442, 521, 593, 726, 767, 1073, 1305, 1870, 3799, 4003, 5434, 7127, 7361, 10068, 10154, 11132, 12264, 12832, 18372, 21685, 27919, 36700,
                      4734, 14890, 16242, 38033, 38310, 45158, 57958, 67018, 68003, 77430, 85430, 86483, 92116, 97531, 864,
                      3717, 5502, 3959, 2637, 3511, 1945, 281, 15736, 15252, 19933, 20908, 13592, 5759,
                      13544, 18242, 16286, 18450, 1120, 146, 45043, 35230, 7882, 36017, 40317, 58941])
    func everyKindRegressions(_ seed: UInt64) {
        var options = SimulationOptions()
        options.faultKinds = Set(FaultKind.allCases)
        let summary = runSchedules(count: 1, firstSeed: seed, options: options)
        #expect(summary.violations.isEmpty, "\(summary.violations.prefix(3))")
    }

    /// A narrower draw that once found a liveness failure: a node that had said it left while
    /// this one was master of a cluster apart still counted here once this one joined that
    /// cluster, and no one could be elected (seed 121: the `left` frame is kept now).
    @Test("schedules of slow disks, leaves, wipes and crashes hold every guarantee", arguments: [UInt64(121)])
    func slowDiskLeaveRegressions(_ seed: UInt64) {
        var options = SimulationOptions()
        options.faultKinds = [.slowDisk, .leave, .wipe, .crash]
        let summary = runSchedules(count: 1, firstSeed: seed, options: options)
        #expect(summary.violations.isEmpty, "\(summary.violations.prefix(3))")
    }

    @Test("a hostile seed replays exactly, trace included")
    func hostileSeedsReplay() {
        var options = SimulationOptions()
        options.trace = true
        let simulator = ClusterSimulator(options: options)
        let a = simulator.run(seed: 4242), b = simulator.run(seed: 4242)
        #expect(a.faults == b.faults && a.events == b.events && a.trace == b.trace)
    }
}
