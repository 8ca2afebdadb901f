import QuorumCore
import QuorumSimulator
import Testing

/// The eight scenarios of the original program's integration tests, driven through the real
/// core on the simulated network with simulated time (no sleeps).
@Suite("The original's scenarios", .onOwnThread)
struct OriginalScenarioTests {
    static let four: [(name: String, port: UInt16)] = [("A", 6004), ("B", 6003), ("C", 6002), ("D", 6001)]

    /// Starts the named nodes one after another and waits until all agree on a master.
    static func cluster(_ nodes: [(name: String, port: UInt16)], metric: Metric = .age, policy: QuorumLossPolicy = .wait) -> SimulatedCluster {
        var config = CoreConfiguration(cluster: "test")
        config.metric = metric
        config.onQuorumLoss = policy
        var c = SimulatedCluster(nodes: nodes, configuration: config)
        for n in nodes {
            c.start(n.name)
            c.run(for: .milliseconds(50))
        }
        return c
    }

    @Test("1. three nodes started one after another all see each other and agree the oldest is master")
    func threeNodesAgreeOnOldest() {
        var c = Self.cluster(Array(Self.four.prefix(3)))
        let settled = c.run(until: .seconds(3)) { $0.allAgree(on: "A") }
        #expect(settled != nil)
        for n in ["A", "B", "C"] {
            #expect(c.status(n)?.connected == 2, "\(n) sees both others")
            #expect(c.status(n)?.master == "A")
        }
        #expect(c.status("A")?.role == .master)
        #expect(c.status("B")?.role == .slave)
        #expect(c.masters == ["A"])
        #expect(c.violations.isEmpty)
    }

    @Test("2. a slave dispatches and a new node with its nickname re-enters in its place")
    func dispatchedNicknameReenters() {
        var c = Self.cluster(Array(Self.four.prefix(3)))
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") } != nil)
        let epoch = c.status("A")?.epoch
        c.leave("C")
        #expect(c.run(until: .seconds(1)) { $0.peerState("C", seenBy: "A") == .dispatched && $0.peerState("C", seenBy: "B") == .dispatched } != nil)
        c.start("C")
        let back = c.run(until: .seconds(2)) { c in
            ["A", "B"].allSatisfy { c.peerState("C", seenBy: $0) == .connected } && c.status("A")?.clusterSize == 3
                && c.status("C")?.role == .slave
        }
        #expect(c.status("A")?.epoch == epoch, "the master did not change")
        #expect(back != nil)
        #expect(!c.peers(of: "A").contains { $0.state == .dispatched }, "no one lists the old entry as dispatched")
        #expect(!c.peers(of: "B").contains { $0.state == .dispatched })
        #expect(c.allAgree(on: "A"))
        #expect(c.violations.isEmpty)
    }

    @Test("3. a killed slave is marked lost and the master stays")
    func killedSlaveIsLost() {
        var c = Self.cluster(Array(Self.four.prefix(3)))
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") } != nil)
        let epoch = c.status("A")?.epoch
        c.kill("C")
        #expect(c.run(until: .seconds(2)) { $0.peerState("C", seenBy: "A") == .lost && $0.peerState("C", seenBy: "B") == .lost } != nil)
        #expect(c.allAgree(on: "A"))
        #expect(c.status("A")?.epoch == epoch, "the master did not change")
        #expect(c.status("A")?.clusterSize == 3, "a lost node still counts")
        #expect(c.status("A")?.lost == 1)
        #expect(c.violations.isEmpty)
    }

    @Test("4. a slave that dispatches is marked dispatched, not lost")
    func dispatchedSlaveIsDispatched() {
        var c = Self.cluster(Array(Self.four.prefix(3)))
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") } != nil)
        c.leave("C")
        #expect(c.run(until: .seconds(1)) { $0.peerState("C", seenBy: "A") == .dispatched && $0.peerState("C", seenBy: "B") == .dispatched } != nil)
        c.run(for: .seconds(2))
        #expect(c.peerState("C", seenBy: "A") == .dispatched, "it never turns into lost")
        #expect(c.status("A")?.clusterSize == 2, "a dispatched node no longer counts")
        #expect(c.exitCodes["C"] == 0)
        #expect(c.allAgree(on: "A"))
    }

    @Test("5. four nodes: the killed master is marked lost and the next oldest is elected", arguments: [Metric.age, Metric.port])
    func killedMasterReplacedByNextBest(metric: Metric) {
        // By age A is oldest, then B; by port D (6001) is lowest, then C.
        let (first, second) = metric == .age ? ("A", "B") : ("D", "C")
        var c = Self.cluster(Self.four, metric: metric)
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: first) } != nil)
        c.kill(first)
        let failover = c.run(until: .seconds(2)) { $0.allAgree(on: second) && $0.masters == [second] }
        #expect(failover != nil)
        // A crashed process is detected through its refused port: no timeout to wait for.
        #expect(failover.map { $0 < .milliseconds(100) } == true, "failover took \(String(describing: failover))")
        for n in Self.four.map(\.name) where n != first {
            #expect(c.peerState(first, seenBy: n) == .lost)
        }
        #expect(c.violations.isEmpty)
    }

    @Test("6. four nodes, two killed: the survivors have no majority", arguments: [QuorumLossPolicy.wait, .dispatch])
    func twoOfFourKilledLoseQuorum(policy: QuorumLossPolicy) {
        var c = Self.cluster(Self.four, policy: policy)
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") } != nil)
        c.kill("A")
        c.kill("B")
        switch policy {
        case .wait:
            #expect(c.run(until: .seconds(2)) { c in ["C", "D"].allSatisfy { c.status($0)?.role == .noQuorum } } != nil)
            #expect(c.masters.isEmpty)
            #expect(c.status("C")?.quorate == false)
            #expect(c.status("C")?.master == nil)
            // They rejoin when the killed nodes come back.
            c.restart("A")
            c.restart("B")
            #expect(c.run(until: .seconds(3)) { $0.masters.count == 1 && $0.allAgree(on: $0.masters[0]) } != nil)
        case .dispatch:
            #expect(c.run(until: .seconds(2)) { !$0.isRunning("C") && !$0.isRunning("D") } != nil)
            #expect(c.exitCodes["C"] == 3)
            #expect(c.exitCodes["D"] == 3)
        }
        #expect(c.violations.isEmpty)
    }

    @Test("7. four nodes: the master dispatches, the next best takes over and nothing is lost")
    func masterDispatchHandsOver() {
        var c = Self.cluster(Self.four)
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") } != nil)
        c.leave("A")
        let handover = c.run(until: .seconds(1)) { $0.allAgree(on: "B") && $0.masters == ["B"] }
        #expect(handover != nil)
        #expect(handover.map { $0 < .milliseconds(100) } == true, "handover took \(String(describing: handover))")
        for n in ["B", "C", "D"] {
            #expect(c.peerState("A", seenBy: n) == .dispatched)
            #expect(c.status(n)?.lost == 0)
        }
        // The old master's hook (dispatched) started before the new master's hook.
        let aStep = c.hooks.first { $0.node == "A" && $0.run.role == .dispatched }
        let bMaster = c.hooks.first { $0.node == "B" && $0.run.role == .master }
        #expect(aStep != nil && bMaster != nil && aStep!.time < bMaster!.time)
        #expect(c.violations.isEmpty)
    }

    @Test("8. two nodes, one killed: the survivor has no majority")
    func twoNodesOneKilled() {
        var c = Self.cluster(Array(Self.four.prefix(2)))
        #expect(c.run(until: .seconds(3)) { $0.allAgree(on: "A") } != nil)
        c.kill("A")
        #expect(c.run(until: .seconds(2)) { $0.status("B")?.role == .noQuorum } != nil)
        #expect(c.status("B")?.quorate == false)
        #expect(c.masters.isEmpty)
        #expect(c.violations.isEmpty)
    }
}
