import QuorumControl
import Testing

/// Priorities and witnesses with real processes (issue 14; the core's rules are in
/// QuorumCoreTests/EligibilityTests).
extension IntegrationTests {
    @Suite("Priorities and witnesses")
    struct Eligibility {
        @Test("The highest priority is master though it started last; status shows priority and eligibility")
        func priorityDecides() async throws {
            try await withCluster { c in
                // The master's own delay decides: every node has the same, as in one quorum.conf.
                try await c.startInOrder(["A", "B"], ["--preempt-delay", "300ms"])
                try c.start("C", ["--priority", "200", "--preempt-delay", "300ms"])
                try await c.waitUntil("C (priority 200) takes over after its delay") {
                    await c.agree(master: "C", members: ["A", "B", "C"], clusterSize: 3, lost: 0)
                }
                let s = try await c.requireStatus("C")
                #expect(s.priority == 200 && s.eligible == true && s.ineligibleReasons == [] && s.witness == false)
                #expect(s.noMasterReason == nil)
                let a = try await c.requireStatus("A")
                #expect(a.priority == 100 && a.preemption == nil)
                #expect(a.warnings?.contains { $0.contains("differ on preemption") } != true)
                // A member that says otherwise of preemption: every status warns.
                try c.start("D", ["--preempt", "no"])
                try await c.waitUntil("A warns that the members differ on preemption") {
                    await c.status("A")?.warnings?.contains { $0.contains("members differ on preemption") && $0.contains("D no") } == true
                }
            }
        }

        @Test("A witness votes and counts but is never master: with it, two nodes keep a master when the master crashes")
        func witnessKeepsTwoNodesAlive() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B"])
                try c.start("W", ["--witness"], hooks: false)
                try await c.waitUntil("W counts as a member and says it is a witness") {
                    guard let w = await c.status("W"), let a = await c.status("A") else { return false }
                    return w.role == "witness" && w.master == "A" && w.witness == true && w.eligible == false
                        && w.ineligibleReasons == ["witness"] && a.clusterSize == 3
                }
                try await c.kill("A")
                try await c.waitUntil("B is master with the witness's vote") {
                    guard let b = await c.status("B"), let w = await c.status("W") else { return false }
                    return b.role == "master" && b.quorate && w.master == "B" && w.role == "witness"
                }
                let table = try await c.quorumctl("W", ["status"])
                #expect(table.standardOutput.contains("witness:") && table.standardOutput.contains("role:         witness"), "\(table.standardOutput)")
            }
        }
    }
}
