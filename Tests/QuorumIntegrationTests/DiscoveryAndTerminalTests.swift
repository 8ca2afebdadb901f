import Foundation
import QuorumControl
import Testing

extension IntegrationTests {
    @Suite("Lost announcements and the terminal")
    struct DiscoveryAndTerminal {
        /// Runs `nft` with a script; true on success.
        static func nft(_ script: String, in directory: String) async throws -> Bool {
            let path = directory + "/rules.nft"
            try script.write(toFile: path, atomically: true, encoding: .utf8)
            let run = try await runCommand("/usr/sbin/nft", ["-f", path], environment: ["PATH": "/usr/sbin:/usr/bin:/bin"], scratchDirectory: directory)
            return run.status == .exited(0)
        }

        @Test("A node whose first announcements are lost still joins as slave, never master")
        func lostAnnouncements() async throws {
            guard getuid() == 0, access("/usr/sbin/nft", X_OK) == 0 else {
                print("skipped: needs root and nft")
                return
            }
            try await withCluster { c in
                try await c.startInOrder(["A", "B"])
                // Drop every datagram sent to this test's discovery port (and only that port).
                let table = "quorumtest\(c.broadcastPort)"
                guard try await Self.nft("table inet \(table) {\n chain out { type filter hook output priority 0; udp dport \(c.broadcastPort) drop; }\n}\n", in: c.directory) else {
                    print("skipped: nft rules cannot be added here")
                    return
                }
                defer { _ = try? runCommandSync("/usr/sbin/nft", ["delete", "table", "inet", table]) }
                try c.start("C")
                // C's first announcements (0, 20, 60, 140 ms) are lost; lift the drop after 200 ms of C's life.
                let started = try c.node("C").startedAt
                try await c.waitUntil("C has run for 200 ms", timeout: .seconds(5)) { monotonicNanoseconds() >= started + 200_000_000 }
                #expect(try await Self.nft("delete table inet \(table)\n", in: c.directory))
                try await c.waitUntil("C joins", timeout: .seconds(6)) {
                    await c.agree(master: "A", members: ["A", "B", "C"], clusterSize: 3, lost: 0)
                }
                #expect(c.hookRuns(of: "C").map(\.hook) == ["slave"], "C never elected itself while alone")
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
