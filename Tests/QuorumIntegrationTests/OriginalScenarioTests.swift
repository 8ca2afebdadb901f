import QuorumControl
import Testing

/// The original program's eight test scenarios (seed-behaviour.md), against real processes,
/// observed only through `quorumctl --json` and the role hooks.
extension IntegrationTests {
    @Suite("The original's scenarios")
    struct OriginalScenarios {
        @Test("1. Three nodes started one after another see each other and agree the oldest is master")
        func threeNodesAgreeOnTheOldest() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C"])
                let epoch = try await c.requireStatus("A").epoch
                for name in ["A", "B", "C"] {
                    let s = try await c.requireStatus(name)
                    #expect(s.name == name)
                    #expect(s.cluster == "quorum")
                    #expect(s.role == (name == "A" ? "master" : "slave"))
                    #expect(s.master == "A")
                    #expect(s.quorate)
                    #expect(s.noMasterReason == nil, "no reason is given when there is a master")
                    #expect(s.epoch == epoch, "every node is in the same epoch")
                    #expect(s.clusterSize == 3)
                    #expect(s.majority == 2)
                    #expect(s.connected == 2)
                    #expect(s.lost == 0)
                    #expect(s.metric == "age")
                    let peers = try #require(await c.peers(name))
                    #expect(Set(peers.map(\.name)) == Set(["A", "B", "C"].filter { $0 != name }))
                    #expect(peers.allSatisfy { $0.state == .connected })
                    #expect(peers.allSatisfy { $0.address == "127.0.0.1" }, "nodes advertise the address they listen on")
                    for peer in peers {
                        #expect(peer.port == Int(try c.node(peer.name).port), "\(name) sees \(peer.name)'s port")
                    }
                }
                // The oldest node has the lowest birth time, as every node sees it.
                let births = try #require(await c.peers("C")).reduce(into: [String: Int64]()) { $0[$1.name] = $1.birth }
                #expect(try #require(births["A"]) < (try #require(births["B"])))

                // Hooks: A became master once; B and C joined as slaves (slave hook once, never master).
                try await c.waitForHookRuns(3)
                try await c.holds("the cluster stays as it is", for: .milliseconds(600)) {
                    await c.agree(master: "A", members: ["A", "B", "C"], clusterSize: 3, lost: 0)
                }
                #expect(c.hookRuns(of: "A").map(\.hook) == ["master"])
                #expect(c.hookRuns(of: "B").map(\.hook) == ["slave"])
                #expect(c.hookRuns(of: "C").map(\.hook) == ["slave"])
            }
        }

        @Test("2. A slave leaves, a new node with its name re-enters and replaces the dispatched entry")
        func reentryAfterDispatch() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C"])
                let epoch = try await c.requireStatus("A").epoch

                // `quorumctl leave` returns once the node told its peers and stopped.
                let leave = try await c.quorumctl("C", ["leave"])
                #expect(leave.status == .exited(0), "quorumctl leave: \(leave)")
                #expect(try await c.waitForExit("C") == .exited(0))
                try await c.waitUntilPeer("C", is: .dispatched, at: ["A", "B"])

                try await c.restart("C")
                try await c.waitUntil("A, B and the new C agree on A with C connected") {
                    await c.agree(master: "A", members: ["A", "B", "C"], clusterSize: 3, lost: 0)
                }
                try await c.waitUntilPeer("C", is: .connected, at: ["A", "B"])
                for observer in ["A", "B"] {
                    let peers = try #require(await c.peers(observer))
                    #expect(peers.filter { $0.name == "C" }.count == 1, "\(observer) lists C once")
                    #expect(!peers.contains { $0.state == .dispatched }, "\(observer) lists nobody as dispatched")
                    let s = try await c.requireStatus(observer)
                    #expect(s.dispatched ?? 0 == 0)
                }
                #expect(try await c.requireStatus("A").epoch == epoch, "the master did not change")
            }
        }

        @Test("3. A killed slave is marked lost; the master stays")
        func killedSlaveIsLost() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C"])
                let epoch = try await c.requireStatus("A").epoch
                try await c.kill("C")
                try await c.waitUntilPeer("C", is: .lost, at: ["A", "B"])
                try await c.waitUntil("A and B agree on A with C lost") {
                    await c.agree(master: "A", members: ["A", "B"], clusterSize: 3, lost: 1)
                }
                for name in ["A", "B"] {
                    let s = try await c.requireStatus(name)
                    #expect(s.epoch == epoch, "\(name): the epoch changes only when the master changes")
                    #expect(s.connected == 1)
                    #expect(s.majority == 2)
                }
                // The lost node keeps counting until an operator forgets it.
                let forget = try await c.quorumctl("A", ["forget", "C"])
                #expect(forget.status == .exited(0), "quorumctl forget C: \(forget)")
                try await c.waitUntil("A no longer lists C") {
                    guard let states = await c.peerStates("A"), let s = await c.status("A") else { return false }
                    return states["C"] == nil && s.clusterSize == 2 && s.lost == 0
                }
                #expect(try await c.requireStatus("A").master == "A")
            }
        }

        @Test("4. A slave that leaves is marked dispatched, not lost")
        func leavingSlaveIsDispatched() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C"])
                try c.stop("C")  // SIGTERM: graceful dispatch
                #expect(try await c.waitForExit("C") == .exited(0))
                try await c.waitUntilPeer("C", is: .dispatched, at: ["A", "B"])
                try await c.waitUntil("A and B agree on A, C no longer counted") {
                    await c.agree(master: "A", members: ["A", "B"], clusterSize: 2, lost: 0)
                }
                for name in ["A", "B"] {
                    let s = try await c.requireStatus(name)
                    #expect(s.lost == 0)
                    #expect(s.connected == 1)
                    #expect(s.dispatched == nil || s.dispatched == 1)
                }
                // C ran its slave hook for `dispatched` when it left.
                try await c.waitUntil("C's slave hook ran for dispatched") {
                    c.hookRuns(of: "C").contains { $0.hook == "slave" && $0.role == "dispatched" }
                }
            }
        }

        @Test("5a. Four nodes, the oldest (master) is killed: it is lost and the next oldest is elected")
        func killedMasterAgeMetric() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C", "D"])
                let before = try await c.requireStatus("B").epoch
                try await c.kill("A")
                try await c.waitUntil("B, C and D elect B with A lost") {
                    await c.agree(master: "B", members: ["B", "C", "D"], clusterSize: 4, lost: 1)
                }
                try await c.waitUntilPeer("A", is: .lost, at: ["B", "C", "D"])
                let epoch = try await c.requireStatus("B").epoch
                #expect(epoch > before, "a new master means a new epoch")
                for name in ["C", "D"] { #expect(try await c.requireStatus(name).epoch == epoch) }
                try await c.waitUntil("B's master hook ran") {
                    c.hookRuns(of: "B").contains { $0.hook == "master" && $0.role == "master" }
                }
                let run = try #require(c.hookRuns(of: "B").last { $0.hook == "master" })
                #expect(run.epoch == epoch)
                #expect(run.master == "B")
            }
        }

        @Test("5b. Same with --use-port-instead-of-life-time: the lowest port is master, then the next lowest")
        func killedMasterPortMetric() async throws {
            try await withCluster { c in
                let names = ["A", "B", "C", "D"]
                for name in names { try c.prepare(name) }
                let byPort = try names.sorted { try c.node($0).port < c.node($1).port }
                // The lowest port starts second, the next lowest last: neither is the oldest.
                let startOrder = [byPort[2], byPort[0], byPort[3], byPort[1]]
                var started: [String] = []
                for name in startOrder {
                    try c.start(name, ["--use-port-instead-of-life-time"])
                    started.append(name)
                    let best = try started.min { try c.node($0).port < c.node($1).port }!
                    try await c.waitUntil("\(started) agree on \(best) (lowest port)") {
                        await c.agree(master: best, members: started, clusterSize: started.count, lost: 0)
                    }
                }
                #expect(try await c.requireStatus(byPort[3]).metric == "port")
                let before = try await c.requireStatus(byPort[1]).epoch

                try await c.kill(byPort[0])
                let survivors = Array(byPort[1...])
                try await c.waitUntil("\(survivors) elect \(byPort[1]) (next lowest port)") {
                    await c.agree(master: byPort[1], members: survivors, clusterSize: 4, lost: 1)
                }
                try await c.waitUntilPeer(byPort[0], is: .lost, at: survivors)
                #expect(try await c.requireStatus(byPort[1]).epoch > before)
                // The lowest port arriving made it master directly (it never ran a slave hook first).
                let firstOfLowest = try #require(c.hookRuns(of: byPort[0]).first)
                #expect(firstOfLowest.hook == "master")
            }
        }

        @Test("6a. Four nodes, two killed: the two survivors have no majority and wait as no-quorum")
        func twoOfFourLeftWait() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C", "D"])
                try await c.kill("C")
                try await c.kill("D")
                try await c.waitUntil("A and B are no-quorum") {
                    for name in ["A", "B"] {
                        guard let s = await c.status(name), s.role == "no-quorum", !s.quorate, s.master == nil,
                            s.clusterSize == 4, s.lost == 2
                        else { return false }
                    }
                    return true
                }
                // quorumctl status answers, with exit status 2 (not quorate).
                let run = try await c.quorumctl("A", ["status", "--json"])
                #expect(run.status == .exited(2), "\(run)")
                // The master stepped down through its slave hook.
                try await c.waitUntil("A's slave hook ran for no-quorum") {
                    c.hookRuns(of: "A").contains { $0.hook == "slave" && $0.role == "no-quorum" }
                }
                try await c.holds("A and B stay up", for: .milliseconds(500)) { c.isRunning("A") && c.isRunning("B") }

                // They rejoin when a majority is back (C restarts: 3 of 4).
                try await c.restart("C")
                try await c.waitUntil("A, B and C agree on A again, D still lost") {
                    await c.agree(master: "A", members: ["A", "B", "C"], clusterSize: 4, lost: 1)
                }
            }
        }

        @Test("6b. Same with --on-quorum-loss dispatch: the two survivors leave and exit with status 3")
        func twoOfFourLeftDispatch() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C", "D"], ["--on-quorum-loss", "dispatch"])
                try await c.kill("C")
                try await c.kill("D")
                #expect(try await c.waitForExit("A", timeout: .seconds(15)) == .exited(3))
                #expect(try await c.waitForExit("B", timeout: .seconds(15)) == .exited(3))
                #expect(c.hookRuns(of: "A").contains { $0.hook == "slave" }, "A ran its slave hook when it stopped being master")
            }
        }

        @Test("7. Four nodes, the master leaves: the next oldest becomes master, nothing is lost")
        func masterLeaves() async throws {
            // Hooks take 0.3 s, so the order of the old master's slave hook and the new master's
            // master hook is visible.
            try await withCluster(hookSeconds: 0.3) { c in
                try await c.startInOrder(["A", "B", "C", "D"])
                let before = try await c.requireStatus("B").epoch
                try c.stop("A")
                #expect(try await c.waitForExit("A") == .exited(0))
                try await c.waitUntil("B, C and D agree on B, nobody lost") {
                    await c.agree(master: "B", members: ["B", "C", "D"], clusterSize: 3, lost: 0)
                }
                try await c.waitUntilPeer("A", is: .dispatched, at: ["B", "C", "D"])
                #expect(try await c.requireStatus("B").epoch > before)

                try await c.waitUntil("B's master hook ran") {
                    c.hookRuns(of: "B").contains { $0.hook == "master" }
                }
                let aLeft = try #require(
                    c.hookRuns(of: "A").last { $0.hook == "slave" }, "A ran its slave hook when it left")
                #expect(aLeft.role == "dispatched" || aLeft.role == "slave")
                let bMaster = try #require(c.hookRuns(of: "B").last { $0.hook == "master" })
                #expect(aLeft.end <= bMaster.start, "the old master's slave hook finished before the new master's hook started")
            }
        }

        @Test("8. Two nodes, one killed: the survivor has no majority")
        func twoNodesOneKilled() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B"])
                try await c.kill("B")
                try await c.waitUntil("A is no-quorum with B lost") {
                    guard let s = await c.status("A") else { return false }
                    return s.role == "no-quorum" && !s.quorate && s.master == nil && s.clusterSize == 2 && s.lost == 1
                }
                #expect(try await c.requireStatus("A").noMasterReason == "no-quorum")
                #expect(try await c.requirePeerStates("A") == ["B": .lost])
                let run = try await c.quorumctl("A", ["status"])
                #expect(run.status == .exited(2), "quorumctl status of a node without quorum exits 2: \(run)")
                #expect(run.standardOutput.contains("none (no quorum: too few members alive for a majority)"), "the table says why: \(run.standardOutput)")
                #expect(c.isRunning("A"))
            }
        }
    }
}
