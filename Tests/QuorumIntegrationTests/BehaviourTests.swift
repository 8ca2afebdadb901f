import QuorumControl
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What users rely on beyond the original's scenarios: re-entry after a crash, names, signals,
/// hooks and their environment, a paused master.
extension IntegrationTests {
    @Suite("Behaviour")
    struct Behaviour {
        @Test("A node killed and restarted under its name re-enters: listed once, connected, master unchanged")
        func killedNodeReenters() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C"])
                let epoch = try await c.requireStatus("A").epoch
                try await c.kill("C")
                try await c.waitUntilPeer("C", is: .lost, at: ["A", "B"])
                let hooksBefore = c.hookRuns(of: "C").count

                try await c.restart("C")  // same name, port, state directory and socket
                try await c.waitUntil("the restarted C is back as a slave of A") {
                    await c.agree(master: "A", members: ["A", "B", "C"], clusterSize: 3, lost: 0)
                }
                for observer in ["A", "B"] {
                    let peers = try #require(await c.peers(observer))
                    #expect(peers.filter { $0.name == "C" }.count == 1, "\(observer) lists C once")
                    #expect(peers.first { $0.name == "C" }?.state == .connected)
                }
                #expect(try await c.requireStatus("A").epoch == epoch, "re-entry does not change the master or epoch")
                // A restarted node is the youngest: its birth is later than the others'.
                let births = try #require(await c.peers("A")).reduce(into: [String: Int64]()) { $0[$1.name] = $1.birth }
                #expect(try #require(births["C"]) > (try #require(births["B"])))
                // The restarted C ran its slave hook exactly once, and no master hook.
                try await c.waitForHookRuns(hooksBefore + 1, of: "C")
                try await c.holds("the cluster stays as it is", for: .milliseconds(500)) {
                    await c.agree(master: "A", members: ["A", "B", "C"], clusterSize: 3, lost: 0)
                }
                #expect(c.hookRuns(of: "C").dropFirst(hooksBefore).map(\.hook) == ["slave"])
                #expect(c.hookRuns(of: "A").map(\.hook) == ["master"], "A's role and hooks do not change")
            }
        }

        @Test("SIGINT is not a goodbye: the peers mark the node lost")
        func interruptIsACrash() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C"])
                try c.interrupt("C")
                _ = try await c.waitForExit("C")
                try await c.waitUntilPeer("C", is: .lost, at: ["A", "B"])
                #expect(await c.agree(master: "A", members: ["A", "B"], clusterSize: 3, lost: 1))
            }
        }

        @Test("A name of exactly 64 bytes works")
        func sixtyFourByteName() async throws {
            let long = "n" + "0123456789-_.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".prefix(63)
            #expect(long.utf8.count == 64)
            try await withCluster { c in
                try await c.startInOrder([long, "B"])
                let s = try await c.requireStatus("B")
                #expect(s.master == long)
                #expect(try await c.requireStatus(long).name == long)
                let peers = try #require(await c.peers("B"))
                #expect(peers.map(\.name) == [long])
                try await c.waitForHookRuns(2)
                #expect(c.hookRuns(of: long).first?.hook == "master")
            }
        }

        @Test("Hooks: a lone node runs its master hook once; a joining node its slave hook once; environment")
        func hookRunsAndEnvironment() async throws {
            try await withCluster { c in
                let args = ["--cluster", "env-test"]
                try c.start("A", args)
                let aStarted = try c.node("A").startedAt
                try await c.waitUntil("A alone is master") {
                    await c.agree(master: "A", members: ["A"], clusterSize: 1, lost: 0)
                }
                try await c.waitForHookRuns(1, of: "A")
                let a = try await c.requireStatus("A")
                #expect(a.cluster == "env-test")
                let aRun = try #require(c.hookRuns(of: "A").first)
                #expect(aRun.hook == "master")
                #expect(aRun.role == "master")
                #expect(aRun.master == "A")
                #expect(aRun.epoch == a.epoch)
                #expect(aRun.cluster == "env-test")
                #expect(aRun.previousRole == nil || aRun.previousRole == "discovering")
                // "If nothing answers, a lone node becomes master … within 2 s" (+1 s for starting a debug build).
                #expect(aRun.start > aStarted)
                #expect(aRun.start - aStarted < 3_000_000_000, "lone master after \(Double(aRun.start - aStarted) / 1e9) s")

                try c.start("B", args)
                let bStarted = try c.node("B").startedAt
                try await c.waitUntil("B joins A") {
                    await c.agree(master: "A", members: ["A", "B"], clusterSize: 2, lost: 0)
                }
                try await c.waitForHookRuns(1, of: "B")
                let bRun = try #require(c.hookRuns(of: "B").first)
                #expect(bRun.hook == "slave")
                #expect(bRun.role == "slave")
                #expect(bRun.master == "A")
                #expect(bRun.epoch == a.epoch, "joining does not change the epoch")
                #expect(bRun.cluster == "env-test")
                // Joins "within 200 ms" of a cluster answering; allow for a slow machine and process start.
                #expect(bRun.start - bStarted < 2_000_000_000, "slave after \(Double(bRun.start - bStarted) / 1e9) s")

                try await c.holds("nothing else happens", for: .milliseconds(600)) {
                    await c.agree(master: "A", members: ["A", "B"], clusterSize: 2, lost: 0)
                }
                #expect(c.hookRuns(of: "A").count == 1, "A's master hook ran once: \(c.hookRuns(of: "A"))")
                #expect(c.hookRuns(of: "B").count == 1, "B's slave hook ran once: \(c.hookRuns(of: "B"))")
            }
        }

        @Test("Nodes of another cluster name are not joined")
        func clusterNamesSeparate() async throws {
            try await withCluster { c in
                try c.start("A", ["--cluster", "red"])
                try await c.waitUntil("A alone is master of red") {
                    await c.agree(master: "A", members: ["A"], clusterSize: 1)
                }
                try c.start("B", ["--cluster", "blue"])
                try await c.waitUntil("B alone is master of blue") {
                    await c.agree(master: "B", members: ["B"], clusterSize: 1)
                }
                try await c.holds("A and B stay apart", for: .milliseconds(600)) {
                    let red = await c.agree(master: "A", members: ["A"], clusterSize: 1)
                    let blue = await c.agree(master: "B", members: ["B"], clusterSize: 1)
                    return red && blue
                }
                #expect(try await c.requirePeerStates("A").isEmpty)
            }
        }

        @Test("A paused master, on resume, does not answer as master once its lease has ended")
        func pausedMaster() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C"])
                try c.pause("A")
                defer { try? c.resume("A") }
                try await c.waitUntil("B and C elect B", timeout: .seconds(15)) {
                    await c.agree(master: "B", members: ["B", "C"], clusterSize: 3)
                }
                let newEpoch = try await c.requireStatus("B").epoch
                try c.resume("A")
                // Every answer A gives from now on: not master of an old epoch.
                try await c.waitUntil("A, B and C agree on one master again", timeout: .seconds(15)) {
                    if let a = await c.status("A") {
                        #expect(a.role != "master" || a.epoch > newEpoch, "A answered as master of epoch \(a.epoch) ≤ \(newEpoch)")
                    }
                    guard let master = await c.status("B")?.master else { return false }
                    return await c.agree(master: master, members: ["A", "B", "C"], clusterSize: 3, lost: 0)
                }
                // A stepped down through its slave hook when its lease ended (no-quorum).
                #expect(c.hookRuns(of: "A").contains { $0.hook == "slave" })
            }
        }

        @Test("A node whose requested port is taken takes a free one and is reachable there")
        func portInUse() async throws {
            try await withCluster { c in
                try c.prepare("A")
                let port = try c.node("A").port
                // Hold A's port with a listening socket.
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                defer { close(fd) }
                var address = ipv4("127.0.0.1", port: port)
                let bound = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                try #require(bound == 0 && listen(fd, 4) == 0)
                try c.start("A")
                // B only once A runs: two processes spawned a millisecond apart may finish
                // starting in either order, and the older one is master.
                try await c.waitUntil("A answers") { await c.status("A") != nil }
                try c.start("B")
                try await c.waitUntil("A and B agree on A") {
                    await c.agree(master: "A", members: ["A", "B"], clusterSize: 2, lost: 0)
                }
                let seen = try #require(await c.peers("B")).first { $0.name == "A" }
                #expect(seen?.port != Int(port), "B reaches A on the port A took instead")
            }
        }
    }
}
