import QuorumControl
import Testing

/// Seeds (`--peer`) with broadcast discovery off: real processes on loopback that can find
/// each other only by dialling the names they were given.
extension IntegrationTests {
    @Suite("Seeds")
    struct Seeds {
        /// `--broadcast-address none` and a `--peer localhost:PORT` for every node, the same
        /// list on every node (each skips itself).
        static func seedArguments(_ c: LocalCluster, _ names: [String]) throws -> [String] {
            var arguments = ["--broadcast-address", "none"]
            for name in names { arguments += ["--peer", "localhost:\(try c.prepare(name).port)"] }
            return arguments
        }

        @Test("Broadcast off: three nodes find each other through --peer names alone, elect, fail over, and take a restarted node back")
        func seedsOnly() async throws {
            try await withCluster { c in
                let names = ["A", "B", "C"]
                // A name that never resolves is shown, retried, and stops nothing.
                let arguments = try Self.seedArguments(c, names) + ["--peer", "no-such-host.invalid"]
                try await c.startInOrder(names, arguments)
                let status = try await c.requireStatus("B")
                #expect(status.broadcastDiscovery == false)
                try await c.waitUntil("every seed of B is connected, or B itself") {
                    guard let seeds = await c.status("B")?.seeds else { return false }
                    return seeds.map(\.state) == ["connected", "self", "connected", "unresolved"] && seeds.map(\.peer) == ["A", nil, "C", nil]
                }
                #expect(try await c.requireStatus("B").seeds?.last?.lastError != nil, "why the seed did not resolve")
                #expect(status.warnings?.contains { $0.contains("no cluster key") } == true, "seeds without a key are warned about")

                try await c.kill("A")
                try await c.waitUntil("B is master of B and C, A lost") {
                    await c.agree(master: "B", members: ["B", "C"], clusterSize: 3, lost: 1)
                }
                try await c.restart("A")
                try await c.waitUntil("the restarted A is back as a slave of B") {
                    await c.agree(master: "B", members: names, clusterSize: 3, lost: 0)
                }
                let table = try await c.quorumctl("C", ["peers"])
                #expect(table.standardOutput.contains("seeds:") && table.standardOutput.contains("connected (A)"), "\(table)")
                let json = try await c.quorumctl("C", ["peers", "--json"])
                #expect(json.standardOutput.hasPrefix("["), "peers --json stays an array: \(json)")
            }
        }

        @Test("With seeds the peer port is fixed: a taken port is exit 1 with one line")
        func fixedPort() async throws {
            try await withCluster { c in
                let arguments = try Self.seedArguments(c, ["A", "B"])
                try c.start("A", arguments)
                try await c.waitUntil("A runs alone as master") { await c.agree(master: "A", members: ["A"]) }
                let a = try c.node("A"), b = try c.prepare("B")
                let run = try await runCommand(
                    c.quorumd, ["127.0.0.1", String(a.port), "-n", "B", "--state-dir", b.stateDirectory, "--control-socket", b.socketPath] + arguments,
                    environment: ["PATH": "/usr/bin:/bin"], scratchDirectory: c.directory, timeout: .seconds(10))
                #expect(run.status == .exited(1), "\(run)")
                #expect(run.standardError.contains("quorumd: port \(a.port) is in use; with --peer the peer port must be fixed"), "\(run)")
            }
        }
    }
}
