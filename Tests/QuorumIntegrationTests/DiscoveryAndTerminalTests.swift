import Foundation
import QuorumControl
import Testing

extension IntegrationTests {
    @Suite("Network faults and the terminal")
    struct DiscoveryAndTerminal {
        /// Runs `nft` with a script; true on success.
        static func nft(_ script: String, in directory: String) async throws -> Bool {
            let path = directory + "/rules.nft"
            try script.write(toFile: path, atomically: true, encoding: .utf8)
            let run = try await runCommand("/usr/sbin/nft", ["-f", path], environment: ["PATH": "/usr/sbin:/usr/bin:/bin"], scratchDirectory: directory)
            return run.status == .exited(0)
        }

        /// Root and nft are needed to drop this test's packets; prints why a test is skipped.
        static var canDropPackets: Bool {
            guard getuid() == 0, access("/usr/sbin/nft", X_OK) == 0 else {
                print("skipped: needs root and nft")
                return false
            }
            return true
        }

        /// Adds a table of this cluster's own holding `chains`; its name, or nil (printing why)
        /// when rules cannot be added here. Remove it with `deleteTable`.
        static func addTable(for c: LocalCluster, chains: String) async throws -> String? {
            let table = "quorumtest\(c.broadcastPort)"
            guard try await nft("table inet \(table) {\n\(chains)\n}\n", in: c.directory) else {
                print("skipped: nft rules cannot be added here")
                return nil
            }
            return table
        }

        static func deleteTable(_ table: String, for c: LocalCluster) async throws -> Bool {
            try await nft("delete table inet \(table)\n", in: c.directory)
        }

        @Test("A node whose first announcements are lost still joins as slave, never master")
        func lostAnnouncements() async throws {
            guard Self.canDropPackets else { return }
            try await withCluster { c in
                try await c.startInOrder(["A", "B"])
                // Drop every datagram sent to this test's discovery port (and only that port).
                guard let table = try await Self.addTable(for: c, chains: " chain out { type filter hook output priority 0; udp dport \(c.broadcastPort) drop; }") else { return }
                defer { _ = try? runCommandSync("/usr/sbin/nft", ["delete", "table", "inet", table]) }
                try c.start("C")
                // C's first announcements (0, 20, 60, 140 ms) are lost; lift the drop after 200 ms of C's life.
                let started = try c.node("C").startedAt
                try await c.waitUntil("C has run for 200 ms", timeout: .seconds(5)) { monotonicNanoseconds() >= started + 200_000_000 }
                #expect(try await Self.deleteTable(table, for: c))
                try await c.waitUntil("C joins", timeout: .seconds(6)) {
                    await c.agree(master: "A", members: ["A", "B", "C"], clusterSize: 3, lost: 0)
                }
                #expect(c.hookRuns(of: "C").map(\.hook) == ["slave"], "C never elected itself while alone")
            }
        }

        @Test("After a partition of seconds, the stale links are ended and dialled anew: the cluster is whole soon after the heal")
        func partitionHealsWithFreshLinks() async throws {
            guard Self.canDropPackets else { return }
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C"])
                // Every link has one end on a node's peer port: dropping those ports (and this
                // cluster's discovery port) cuts every node off from every other.
                let ports = try ["A", "B", "C"].map { String(try c.node($0).port) }.joined(separator: ", ")
                let chains = " chain out { type filter hook output priority 0; tcp dport { \(ports) } drop; tcp sport { \(ports) } drop; udp dport \(c.broadcastPort) drop; }"
                guard let table = try await Self.addTable(for: c, chains: chains) else { return }
                defer { _ = try? runCommandSync("/usr/sbin/nft", ["delete", "table", "inet", table]) }
                // Each node ends its links (the core on silence, or the kernel once their frames
                // have gone unacknowledged for 1 s) instead of keeping them through TCP's
                // retransmission back-off: none is connected to any other, none has a quorum.
                try await c.waitUntil("no node has a link or a quorum", timeout: .seconds(10)) {
                    for name in ["A", "B", "C"] {
                        guard let status = await c.status(name), status.connected == 0, !status.quorate else { return false }
                    }
                    return true
                }
                #expect(try await Self.deleteTable(table, for: c))
                let healed = ContinuousClock.now
                try await c.waitUntil("A, B and C agree on one master again", timeout: .seconds(10)) {
                    guard let master = await c.status("A")?.master else { return false }
                    return await c.agree(master: master, members: ["A", "B", "C"], clusterSize: 3, lost: 0)
                }
                print("partition of every link healed: agreement \(ContinuousClock.now - healed) after the heal")
            }
        }

        @Test("q + Enter on an interactive terminal is a graceful dispatch (exit 0, dispatched on the others)")
        func quitFromTerminal() async throws {
            guard access("/usr/bin/script", X_OK) == 0 else {
                print("skipped: needs script(1) for a terminal")
                return
            }
            try await withCluster { c in
                try await c.startInOrder(["A"])
                let b = try c.prepare("B")
                let command = ([c.quorumd] + (try c.standardArguments("B"))).map { "'\($0)'" }.joined(separator: " ")
                // Type q once B has joined A (bounded: 10 s), in a terminal made by script(1).
                let shell = """
                    i=0; until '\(c.quorumctl)' --socket '\(b.socketPath)' status --json 2>/dev/null | grep -q '"master" : "A"' || [ $i -ge 200 ]; do sleep 0.05; i=$((i+1)); done
                    printf 'q\\n'
                    """
                let run = try await runCommand(
                    "/bin/sh", ["-c", "{ \(shell); } | /usr/bin/script -qefc \"\(command.replacingOccurrences(of: "\"", with: "\\\""))\" /dev/null"],
                    environment: ["PATH": "/usr/bin:/bin"], scratchDirectory: c.directory, timeout: .seconds(20))
                #expect(run.status == .exited(0), "\(run)")
                try await c.waitUntil("A lists B as dispatched", timeout: .seconds(5)) {
                    await c.peerStates("A")?["B"] == .dispatched
                }
            }
        }
    }
}

/// A short blocking command for clean-up paths.
func runCommandSync(_ executable: String, _ arguments: [String]) throws -> ExitStatus {
    let pid = try spawnChild(executable: executable, arguments: arguments, environment: ["PATH": "/usr/sbin:/usr/bin:/bin"], output: .combined("/dev/null"))
    return waitForChild(pid, timeout: .seconds(5))
}
