import QuorumControl
import QuorumCore
import Testing

/// A rolling upgrade: real processes of two protocol versions in one cluster. A build stands
/// in for the older one with `QUORUM_TEST_PROTOCOL=1`: it sends no versions frame and skips
/// frames of version 2, as the build before protocol versions did.
extension IntegrationTests {
    @Suite("Protocol versions")
    struct ProtocolVersions {
        /// Every running node's status; records the master each node names, and fails at once
        /// if two nodes both say they are master.
        final class Watch {
            var masters: [String] = []
            func look(_ c: LocalCluster, _ names: [String]) async throws -> [String: StatusReport] {
                var statuses: [String: StatusReport] = [:]
                for name in names where c.isRunning(name) {
                    if let s = await c.status(name) { statuses[name] = s }
                }
                let claiming = statuses.filter { $0.value.role == "master" }.map(\.key).sorted()
                if claiming.count > 1 { throw IntegrationError("two masters at once: \(claiming)\n\(await c.snapshot())") }
                if let m = claiming.first, masters.last != m { masters.append(m) }
                return statuses
            }
        }

        @Test("A rolling upgrade from protocol 1 to 2, one node at a time, keeps one master; status names the nodes behind")
        func rollingUpgrade() async throws {
            try await withCluster { c in
                let names = ["A", "B", "C"]
                let watch = Watch()
                for (i, name) in names.enumerated() {
                    try c.start(name, environment: ["QUORUM_TEST_PROTOCOL": "1"])
                    let members = Array(names[...i])
                    try await c.waitUntil("\(members) agree A is master") {
                        _ = try await watch.look(c, names)
                        return await c.agree(master: "A", members: members, clusterSize: members.count, lost: 0)
                    }
                }
                for name in names {
                    let s = try await c.requireStatus(name)
                    #expect(s.protocolVersion == 1 && s.clusterProtocolVersion == 1 && s.protocolBehind == [])
                }

                let current = Int(WireFormat.version)
                // Slaves first, the master last: its leave is the one planned handover.
                for (step, name) in ["B", "C", "A"].enumerated() {
                    try c.stop(name)
                    _ = try await c.waitForExit(name)
                    try c.start(name)
                    let upgraded = Set(["B", "C", "A"].prefix(step + 1))
                    try await c.waitUntil("\(name) is back on the current protocol and all three agree on one master") {
                        let statuses = try await watch.look(c, names)
                        guard statuses.count == 3, let master = statuses.values.first(where: { $0.role == "master" })?.name else { return false }
                        guard await c.agree(master: master, members: names, clusterSize: 3, lost: 0) else { return false }
                        // Every link is known: each node names exactly the older nodes as behind.
                        let older = names.filter { !upgraded.contains($0) }
                        for (n, s) in statuses {
                            if upgraded.contains(n) {
                                guard s.protocolVersion == current, s.clusterProtocolVersion == (older.isEmpty ? current : 1), s.protocolBehind == older else { return false }
                            } else {
                                guard s.protocolVersion == 1, s.clusterProtocolVersion == 1, s.protocolBehind == [] else { return false }
                            }
                        }
                        return true
                    }
                }
                #expect(watch.masters == ["A", "B"], "the master changed only when it was upgraded: \(watch.masters)")
                let peers = try #require(await c.peers("B"))
                #expect(peers.map(\.protocolVersion) == [current, current], "every link speaks \(current) once all are upgraded")
                let table = try await c.quorumctl("B", ["status"])
                #expect(table.standardOutput.contains("protocol:"), "\(table)")
            }
        }
    }
}
