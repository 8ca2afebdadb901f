import Foundation
import QuorumControl
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 11, at the shell's edges: a second live process with a member's name, and master
/// hooks that must never start once the node's lease has ended.
extension IntegrationTests {
    @Suite("Split brain closed at the edges")
    struct SplitBrainEdges {
        @Test("A second process with a live member's name exits 2 naming the holder; the holder stays a member",
              arguments: [false, true])
        func secondProcessWithATakenName(sealed: Bool) async throws {
            try await withCluster { c in
                // With a cluster key the refusal travels sealed like every other frame.
                let key = sealed ? try Security.keyAArguments(c) : []
                try await c.startInOrder(["A", "B"], key)
                let before = try await c.requireStatus("A")
                let holder = try c.node("B")

                // The impostor: a port, state directory and socket of its own, but the name B.
                var arguments = try c.standardArguments("B-again") + key
                let nameIndex = try #require(arguments.firstIndex(of: "B-again"))
                arguments[nameIndex] = "B"
                try c.launch("B-again", arguments: arguments)

                // Throughout, A sees the same master, epoch and a cluster of 2, until the
                // impostor has ended (within a few seconds) with status 2.
                var status: ExitStatus?
                try await c.waitUntil("the second B has ended", timeout: .seconds(5)) {
                    let a = try await c.requireStatus("A")
                    guard a.master == "A", a.epoch == before.epoch, a.clusterSize == 2, a.quorate else {
                        throw IntegrationError("A while the second B runs: master \(a.master ?? "none"), epoch \(a.epoch), size \(a.clusterSize), quorate \(a.quorate)")
                    }
                    status = c.exitStatus("B-again")
                    return status != nil
                }
                #expect(status == .exited(2))
                let log = c.log("B-again")
                let lines = log.split(separator: "\n").filter { $0.contains("already running") }
                #expect(lines.count == 1, "one line says why:\n\(log)")
                #expect(lines.first.map { $0.hasPrefix("quorumd: another node named B is already running at 127.0.0.1:\(holder.port);") } == true,
                        "the line names the first B's address and port:\n\(log)")

                // The first B is still the member A knows, at its own port, and the cluster stays.
                try await c.holds("A and B agree, a cluster of 2, the same epoch", for: .seconds(1)) {
                    guard await c.agree(master: "A", members: ["A", "B"], clusterSize: 2, lost: 0) else { return false }
                    return try await c.requireStatus("A").epoch == before.epoch
                }
                let peers = try #require(await c.peers("A"))
                #expect(peers.filter { $0.name == "B" }.map(\.port) == [Int(holder.port)])
                #expect(peers.first { $0.name == "B" }?.state == .connected)
                #expect(c.hookRuns(of: "B").map(\.hook) == ["slave"], "the second B ran no hook; the first ran its slave hook once")
            }
        }

        @Test("Two processes with one name and no one else: the link between them settles it, the second exits 2")
        func secondProcessOfALoneNode() async throws {
            try await withCluster { c in
                try await c.startInOrder(["B"])
                let before = try await c.requireStatus("B")
                let holder = try c.node("B")
                var arguments = try c.standardArguments("B-again")
                arguments[try #require(arguments.firstIndex(of: "B-again"))] = "B"
                try c.launch("B-again", arguments: arguments)
                #expect(try await c.waitForExit("B-again", timeout: .seconds(5)) == .exited(2))
                #expect(c.log("B-again").contains("quorumd: another node named B is already running at 127.0.0.1:\(holder.port);"),
                        "the line names the first B:\n\(c.log("B-again"))")
                try await c.holds("B stays master of the same epoch", for: .milliseconds(500)) {
                    let b = try await c.requireStatus("B")
                    return b.role == "master" && b.epoch == before.epoch && b.clusterSize == 1
                }
            }
        }

        @Test("With a slow slave hook, a node elected meanwhile still runs its master hook afterwards")
        func latestRolesHookRunsAfterASlowOne() async throws {
            try await withCluster(hookSeconds: 3) { c in
                try await c.startInOrder(["A", "B", "C"])
                // B's slave hook (3 s) started when B joined; A is killed while it runs.
                try await c.kill("A")
                try await c.waitUntil("B and C elect B", timeout: .seconds(10)) {
                    await c.agree(master: "B", members: ["B", "C"], clusterSize: 3, lost: 1)
                }
                let epoch = try await c.requireStatus("B").epoch
                try #require(c.hookRuns(of: "B").isEmpty, "B's slave hook still runs when B becomes master (else this test shows nothing)")

                try await c.waitForHookRuns(2, of: "B", timeout: .seconds(15))
                let runs = c.hookRuns(of: "B")
                #expect(runs.map(\.hook) == ["slave", "master"])
                #expect(runs.last?.epoch == epoch)
                if runs.count == 2 {
                    #expect(runs[1].start >= runs[0].end, "one hook at a time")
                }
            }
        }

        @Test("A master hook queued behind a slow slave hook is skipped once the lease has ended (paused node)")
        func staleMasterHookIsSkipped() async throws {
            try await withCluster(hookSeconds: 3) { c in
                try await c.startInOrder(["A", "B", "C"])
                try await c.kill("A")
                try await c.waitUntil("B and C elect B", timeout: .seconds(10)) {
                    await c.agree(master: "B", members: ["B", "C"], clusterSize: 3, lost: 1)
                }
                let epoch = try await c.requireStatus("B").epoch
                // B's master hook waits behind its slave hook (still running). Stop B's process
                // (not the hook) until that hook has ended and B's lease certainly has too: C
                // marks B lost after 600 ms of silence, later than B's 400 ms lease.
                try c.pause("B")
                defer { try? c.resume("B") }
                try #require(c.hookRuns(of: "B").isEmpty, "B's slave hook still runs when B is paused (else this test shows nothing)")
                try await c.waitForHookRuns(1, of: "B", timeout: .seconds(10))
                try await c.waitUntilPeer("B", is: .lost, at: ["C"])
                try c.resume("B")

                // On resume B steps down, and the master hook of its old epoch never runs. B is
                // elected again later, and that (latest) master hook runs.
                try await c.waitUntil("B runs the master hook of a later epoch", timeout: .seconds(25)) {
                    c.hookRuns(of: "B").contains { $0.hook == "master" }
                }
                let runs = c.hookRuns(of: "B")
                #expect(!runs.contains { $0.hook == "master" && $0.epoch == epoch }, "no master hook of epoch \(epoch): \(runs)")
                #expect(runs.contains { $0.hook == "master" && ($0.epoch ?? 0) > epoch })
                #expect(c.log("B").contains("B skips its queued master hook (epoch \(epoch))"), "the skip is logged")
                for (earlier, later) in zip(runs, runs.dropFirst()) {
                    #expect(later.start >= earlier.end, "one hook at a time: \(runs)")
                }
            }
        }

        @Test("A vote that cannot be persisted ends the node at once with status 1, like a crash")
        func persistFailureEndsTheNode() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A"])
                // A's state directory becomes a file: the next write of its state fails.
                let state = try c.node("A").stateDirectory
                try FileManager.default.removeItem(atPath: state)
                try c.writeFile(state, "not a directory\n")
                // B joining changes the membership A must persist.
                try c.start("B")
                let status = try await c.waitForExit("A", timeout: .seconds(10))
                #expect(status == .exited(1))
                #expect(c.log("A").contains("cannot persist the vote"))
                #expect(!c.log("A").contains("leaves the cluster"), "no goodbye")
                try await c.waitUntilPeer("A", is: .lost, at: ["B"])
            }
        }
    }
}
