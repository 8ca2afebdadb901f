import Foundation
import QuorumControl
import Testing

/// Reload with real processes: SIGHUP and `quorumctl reload` read the same `--config` files
/// again and apply them all or nothing, without a change of role.
extension IntegrationTests {
    @Suite("Reload")
    struct Reload {
        /// Node `name` started with its settings in a file of its own (flags would win over it).
        static func startWithFile(_ c: LocalCluster, _ name: String, _ text: String) throws -> String {
            let node = try c.prepare(name)
            let file = c.directory + "/\(name).conf"
            try c.writeFile(file, text)
            try c.launch(name, arguments: [
                "127.0.0.1", String(node.port), LocalCluster.broadcastAddress, String(c.broadcastPort),
                "-n", name, "--state-dir", node.stateDirectory, "--control-socket", node.socketPath, "--config", file,
            ])
            return file
        }

        @Test("SIGHUP takes a new hook and log level with no change of role, and never stops the node")
        func sighupReloads() async throws {
            try await withCluster { c in
                let first = "master-hook = \(c.masterHook)\nslave-hook = \(c.slaveHook)\nlog-level = info\n"
                let files = [try Self.startWithFile(c, "A", first)]
                try await c.waitUntil("A is master alone") { await c.agree(master: "A", members: ["A"]) }
                let files2 = files + [try Self.startWithFile(c, "B", first)]
                try await c.waitUntil("A is master of A and B") { await c.agree(master: "A", members: ["A", "B"]) }
                let files3 = files2 + [try Self.startWithFile(c, "C", first)]
                try await c.waitUntil("A is master of A, B and C") { await c.agree(master: "A", members: ["A", "B", "C"]) }
                let before = try await c.requireStatus("B")
                #expect(!c.log("B").contains(" debug "), "info level: no debug lines yet")

                // A second master hook that leaves its own mark, and the debug level.
                let marker = c.directory + "/second-hook.log"
                let second = c.directory + "/second-master-hook"
                try c.writeExecutable(second, "#!/bin/sh\necho \"$QUORUM_NAME $QUORUM_ROLE $QUORUM_EPOCH\" >> '\(marker)'\n")
                for file in files3 { try c.writeFile(file, "master-hook = \(second)\nslave-hook = \(c.slaveHook)\nlog-level = debug\n") }
                for name in ["A", "B", "C"] { try c.signal(name, SIGHUP) }
                try await c.waitUntil("both logged the reload") {
                    ["A", "B", "C"].allSatisfy { c.log($0).contains("configuration reloaded (SIGHUP): log-level info -> debug, master-hook \(c.masterHook) -> \(second)") }
                }
                // The same role, master and epoch on both; both still run; debug lines now.
                let after = try await c.requireStatus("B")
                #expect(after.master == "A" && after.role == before.role && after.epoch == before.epoch, "\(after)")
                #expect(c.isRunning("A") && c.isRunning("B") && c.isRunning("C"))
                // A SIGHUP with nothing changed, twice at once, and the signals that mean
                // nothing to quorumd: still the same node.
                try c.signal("B", SIGUSR1)
                try c.signal("B", SIGUSR2)
                try c.signal("B", SIGHUP)
                try c.signal("B", SIGHUP)
                try await c.waitUntil("B reloaded with no changes") { c.log("B").contains("configuration reloaded (SIGHUP): no changes") }
                #expect(c.isRunning("B"))

                // The next master runs the new hook file, not the old one.
                try await c.kill("A")
                try await c.waitUntil("B, the oldest left, is master of B and C") { await c.agree(master: "B", members: ["B", "C"]) }
                let epoch = try await c.requireStatus("B").epoch
                try await c.waitUntil("the second hook ran on B for its epoch") {
                    ((try? String(contentsOfFile: marker, encoding: .utf8)) ?? "").contains("B master \(epoch)")
                }
                #expect(!c.hookRuns(of: "B").contains { $0.role == "master" }, "the old master hook must not run after the reload")
                #expect(c.log("B").contains(" debug "), "the failover is logged at the reloaded debug level")
            }
        }

        @Test("A bad file, or a setting that needs a restart, changes nothing and says why; quorumctl reload and --check-config report it")
        func refusedReload() async throws {
            try await withCluster { c in
                let good = "master-hook = \(c.masterHook)\nslave-hook = \(c.slaveHook)\nlog-level = info\nhook-timeout = 30\n"
                let file = try Self.startWithFile(c, "A", good)
                try await c.waitUntil("A is master alone") { await c.agree(master: "A", members: ["A"]) }
                let epoch = try await c.requireStatus("A").epoch

                let check = { (path: String) async throws -> CommandRun in
                    try await runCommand(c.quorumd, ["--check-config", "--config", path, "-n", "A"], environment: ["PATH": "/usr/bin:/bin"], scratchDirectory: c.directory)
                }
                let ok = try await check(file)
                #expect(ok.status == .exited(0) && ok.standardOutput.contains("configuration OK"), "\(ok)")

                // A bad value: refused, nothing applied (the hook timeout stays 30).
                try c.writeFile(file, good.replacingOccurrences(of: "hook-timeout = 30", with: "hook-timeout = 5") + "log-level = loud\n")
                let bad = try await c.quorumctl("A", ["reload"])
                #expect(bad.status == .exited(1), "\(bad)")
                #expect(bad.standardError.contains("reload refused: \(file):5: log-level: 'loud' is not a log level"), "\(bad)")
                let badCheck = try await check(file)
                #expect(badCheck.status == .exited(2) && badCheck.standardError.contains("'loud' is not a log level"), "\(badCheck)")
                try c.signal("A", SIGHUP)
                try await c.waitUntil("A logged the refused SIGHUP reload") { c.log("A").contains("(SIGHUP); the node runs on as it was") }

                // A setting that needs a restart: refused with its name, JSON too.
                try c.writeFile(file, good.replacingOccurrences(of: "hook-timeout = 30", with: "hook-timeout = 5") + "cluster = other\n")
                let restart = try await c.quorumctl("A", ["reload", "--json"])
                #expect(restart.status == .exited(1), "\(restart)")
                let report = try JSONDecoder().decode(ReloadReport.self, from: Data(restart.standardOutput.utf8))
                #expect(!report.applied && report.errors == ["cluster quorum -> other needs a restart"] && report.changed.isEmpty, "\(report)")

                // The good change goes through, listed; the role never moved.
                try c.writeFile(file, good.replacingOccurrences(of: "hook-timeout = 30", with: "hook-timeout = 5"))
                let done = try await c.quorumctl("A", ["reload"])
                #expect(done.status == .exited(0) && done.standardOutput == "reloaded: hook-timeout 30 -> 5\n", "\(done)")
                let status = try await c.requireStatus("A")
                #expect(status.role == "master" && status.epoch == epoch && c.isRunning("A"), "\(status)")
            }
        }
    }
}
