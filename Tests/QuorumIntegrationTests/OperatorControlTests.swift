import Foundation
import QuorumControl
import Testing

/// Planned step-down, standby and health checks with real processes (issue 14; the core's
/// rules are in QuorumCoreTests/StepDownTests and EligibilityTests).
extension IntegrationTests {
    @Suite("Step-down, standby and health checks")
    struct OperatorControl {
        @Test("step-down asked on a slave hands over to the target in order, leaves no preference behind, and refuses what it cannot do")
        func stepDown() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C"])
                let epoch = try await c.requireStatus("A").epoch
                let asked = monotonicNanoseconds()
                let run = try await c.quorumctl("C", ["step-down", "--to", "B", "--timeout", "1s", "--json"])
                #expect(run.status == .exited(0), "\(run)")
                let report = try JSONDecoder().decode(StepDownReport.self, from: Data(run.standardOutput.utf8))
                #expect(report.ok && report.from == "A" && report.to == "B" && report.previousEpoch == epoch && (report.epoch ?? 0) > epoch)
                try await c.waitUntil("all agree B is master") { await c.agree(master: "B", members: ["A", "B", "C"], clusterSize: 3, lost: 0) }
                // The old master's slave hook finished before the new master's hook started.
                try await c.waitUntil("B's master hook ran") { c.hookRuns(of: "B").contains { $0.hook == "master" && $0.start > asked } }
                let demoted = c.hookRuns(of: "A").first { $0.hook == "slave" && $0.start > asked }
                let promoted = c.hookRuns(of: "B").first { $0.hook == "master" && $0.start > asked }
                #expect(demoted != nil && promoted != nil && demoted!.end <= promoted!.start, "\(c.hookRuns())")
                // Past the request's timeout, A (older) does not take the role back.
                try await c.holds("B stays master after the handover's timeout", for: .milliseconds(1500)) {
                    await c.agree(master: "B", members: ["A", "B", "C"])
                }

                let unknown = try await c.quorumctl("A", ["step-down", "--to", "Z"])
                #expect(unknown.status == .exited(1) && unknown.standardError.contains("no member named Z"), "\(unknown)")
                let already = try await c.quorumctl("C", ["step-down", "--to", "B"])
                #expect(already.status == .exited(1) && already.standardError.contains("B is the master already"), "\(already)")
                let table = try await c.quorumctl("A", ["step-down"])
                #expect(table.status == .exited(0) && table.standardOutput.hasPrefix("stepped down: B -> "), "\(table)")
            }
        }

        @Test("step-down refusals from real processes: busy, ineligible target, no other eligible member, no master, an older member")
        func stepDownRefusals() async throws {
            // Hooks of 0.6 s: a handover stays under way long enough to be found busy.
            try await withCluster(hookSeconds: 0.6) { c in
                try await c.startInOrder(["A", "B", "C"], timeout: .seconds(15))
                _ = try await c.quorumctl("C", ["standby", "on"])
                try await c.waitUntil("A knows C is in standby") {
                    await c.peers("A")?.first { $0.name == "C" }?.standby == true
                }
                let ineligible = try await c.quorumctl("B", ["step-down", "--to", "C", "--json"])
                #expect(ineligible.status == .exited(1) && ineligible.standardOutput.contains("\"reason\" : \"target-ineligible\"")
                        && ineligible.standardOutput.contains("C is not eligible: standby"), "\(ineligible)")
                // The first step-down runs A's 0.6 s slave hook; a second one meanwhile is busy.
                async let first = c.quorumctl("A", ["step-down", "--to", "B"])
                try await c.waitUntil("A is stepping down") { await c.status("A")?.role == "slave" }
                let busy = try await c.quorumctl("C", ["step-down"])
                #expect(busy.status == .exited(1) && busy.standardError.contains("already under way"), "\(busy)")
                #expect(try await first.status == .exited(0))
                try await c.waitUntil("B is master") { await c.agree(master: "B", members: ["A", "B", "C"]) }
                _ = try await c.quorumctl("A", ["standby", "on"])
                try await c.waitUntil("B knows A is in standby") { await c.peers("B")?.first { $0.name == "A" }?.standby == true }
                let alone = try await c.quorumctl("B", ["step-down"])
                #expect(alone.status == .exited(1) && alone.standardError.contains("no other eligible member"), "\(alone)")
                try await c.kill("C")
                try await c.kill("A")
                try await c.waitUntil("B has no quorum") { await c.status("B")?.quorate == false }
                let none = try await c.quorumctl("B", ["step-down"])
                #expect(none.status == .exited(1) && none.standardError.contains("no master to step down (no-quorum)"), "\(none.standardError)")
            }
        }

        @Test("step-down needs every member on protocol 3: with an older member it is refused, nothing changed")
        func stepDownFeatureInactive() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B"])
                try c.start("C", environment: ["QUORUM_TEST_PROTOCOL": "2"])
                try await c.waitUntil("C joins") { await c.agree(master: "A", members: ["A", "B", "C"], clusterSize: 3) }
                let run = try await c.quorumctl("B", ["step-down", "--json"])
                #expect(run.status == .exited(1) && run.standardOutput.contains("feature-inactive") && run.standardOutput.contains("C speaks protocol 2"), "\(run)")
                #expect(await c.agree(master: "A", members: ["A", "B", "C"]))
            }
        }

        @Test("standby on the master hands over; it is persisted across a restart unless --until-restart; off does not take the role back")
        func standby() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C"])
                let on = try await c.quorumctl("A", ["standby", "on"])
                #expect(on.status == .exited(0) && on.standardOutput.contains("standby"), "\(on)")
                try await c.waitUntil("B is master, A in standby") {
                    guard await c.agree(master: "B", members: ["A", "B", "C"]), let a = await c.status("A") else { return false }
                    return a.standby?.on == true && a.standby?.persistent == true && a.eligible == false && a.ineligibleReasons == ["standby"]
                }
                let table = try await c.quorumctl("A", ["status"])
                #expect(table.standardOutput.contains("standby:") && table.standardOutput.contains("(persistent)"), "\(table.standardOutput)")
                let peers = try #require(await c.peers("B"))
                #expect(peers.first { $0.name == "A" }?.standby == true && peers.first { $0.name == "A" }?.eligible == false)

                try await c.kill("A")
                _ = try await c.restart("A")
                try await c.waitUntil("A comes back still in standby") {
                    guard let a = await c.status("A") else { return false }
                    return a.master == "B" && a.standby?.on == true && a.eligible == false
                }
                let off = try await c.quorumctl("A", ["standby", "off"])
                #expect(off.status == .exited(0), "\(off)")
                try await c.holds("B stays master once A is out of standby", for: .milliseconds(1200)) {
                    guard await c.agree(master: "B", members: ["A", "B", "C"]), let a = await c.status("A") else { return false }
                    return a.standby?.on == false && a.eligible == true
                }

                _ = try await c.quorumctl("C", ["standby", "on", "--until-restart"])
                try await c.waitUntil("C is in standby until it restarts") { await c.status("C")?.standby?.persistent == false }
                try await c.kill("C")
                _ = try await c.restart("C")
                try await c.waitUntil("C restarted out of standby") {
                    guard let s = await c.status("C") else { return false }
                    return s.master == "B" && s.standby?.on == false && s.eligible == true
                }
            }
        }

        @Test("a failing check makes the master hand over in order; the check sees the node's role; passing again takes nothing back")
        func healthCheck() async throws {
            try await withCluster { c in
                let check = c.directory + "/check.sh"
                try c.writeExecutable(check, """
                    #!/bin/sh
                    echo "$QUORUM_ROLE $QUORUM_EPOCH $QUORUM_CHECK_FAILURES" > "$2.env"
                    [ -e "$1" ] || { echo "$1 is missing"; exit 1; }

                    """)
                for name in ["A", "B", "C"] { try c.writeFile(c.directory + "/ok-\(name)", "") }
                for name in ["A", "B", "C"] {
                    let ok = c.directory + "/ok-\(name)"
                    try c.start(name, ["--check", "\(check) \(ok) '\(c.directory)/env \(name)'", "--check-interval", "100ms",
                                       "--check-fall", "2", "--check-rise", "1"])
                    try await c.waitUntil("\(name) joins with a passing check") {
                        guard let s = await c.status(name) else { return false }
                        return s.check?.state == "passing" && s.master == "A"
                    }
                }
                try await c.waitUntil("A's check is told it is master") {
                    ((try? String(contentsOfFile: c.directory + "/env A.env", encoding: .utf8)) ?? "").hasPrefix("master ")
                }
                let asked = monotonicNanoseconds()
                try FileManager.default.removeItem(atPath: c.directory + "/ok-A")
                try await c.waitUntil("A fails its check and B is master") {
                    guard await c.agree(master: "B", members: ["A", "B", "C"]), let a = await c.status("A") else { return false }
                    return a.check?.state == "failing" && a.ineligibleReasons == ["check-failing"] && a.check?.lastResult == "exit 1"
                        && a.check?.lastOutput == "\(c.directory)/ok-A is missing"
                }
                let demoted = c.hookRuns(of: "A").first { $0.hook == "slave" && $0.start > asked }
                let promoted = c.hookRuns(of: "B").first { $0.hook == "master" && $0.start > asked }
                #expect(demoted != nil && promoted != nil && demoted!.end <= promoted!.start, "\(c.hookRuns())")
                #expect(c.log("A").contains("check failed 2 times (exit 1"))

                try c.writeFile(c.directory + "/ok-A", "")
                try await c.waitUntil("A passes again") { await c.status("A")?.check?.state == "passing" }
                try await c.holds("B stays master", for: .milliseconds(1000)) { await c.agree(master: "B", members: ["A", "B", "C"]) }
            }
        }

        @Test("a check that outlives its timeout is killed and counts as failing: a lone node has no eligible member")
        func checkTimeout() async throws {
            try await withCluster { c in
                try c.start("D", ["--check", "sleep 30", "--check-timeout", "200ms", "--check-interval", "100ms", "--check-fall", "1"])
                try await c.waitUntil("D's check timed out") {
                    guard let s = await c.status("D") else { return false }
                    return s.check?.state == "failing" && s.check?.lastResult == "timeout" && s.master == nil
                        && s.noMasterReason == "no-eligible-member" && s.role != "master"
                }
            }
        }
    }
}
