import Foundation
import QuorumControl
import Testing

/// `--metrics-listen` with real processes: what Prometheus' own parser reads from `/metrics`
/// agrees with `quorumctl status --json`, a failover is counted, and a busy port stops nothing.
extension IntegrationTests {
    @Suite("Metrics")
    struct Metrics {
        /// Debian's python3-prometheus-client (scripts/setup.sh installs it), under the
        /// system's python3 whatever python3 is first on PATH.
        static let python = "/usr/bin/python3"
        static let parser = """
            import json, sys, urllib.request
            from prometheus_client.parser import text_string_to_metric_families
            text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
            out = {}
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
                    out[s.name + ("{" + labels + "}" if labels else "")] = s.value
            print(json.dumps(out))
            """

        /// Every sample of one scrape, keyed `name{label="value",…}`, as the parser read them.
        static func scrape(_ c: LocalCluster, port: UInt16) async throws -> [String: Double] {
            let run = try await runCommand(
                python, ["-c", parser, "http://127.0.0.1:\(port)/metrics"], environment: ["PATH": "/usr/bin:/bin"],
                scratchDirectory: c.directory)
            guard run.status == .exited(0) else { throw IntegrationError("scrape or parse failed: \(run)") }
            return try JSONDecoder().decode([String: Double].self, from: Data(run.standardOutput.utf8))
        }

        @Test("A scrape parses as Prometheus text and agrees with status --json, before and after a failover; a busy port stops nothing")
        func scrapeAgreesWithStatus() async throws {
            try await withCluster { c in
                var ports: [String: UInt16] = [:]
                for name in ["A", "B", "C"] {
                    let port = try PortAllocator.tcpPort()
                    ports[name] = port
                    try c.start(name, ["--metrics-listen", "127.0.0.1:\(port)"])
                    try await c.waitUntil("\(name) answers") { await c.status(name) != nil }
                }
                try await c.waitUntil("A is master of three") { await c.agree(master: "A", members: ["A", "B", "C"]) }

                let status = try await c.requireStatus("B")
                var b = try await Self.scrape(c, port: ports["B"]!)
                #expect(b["quorum_has_master"] == 1 && b["quorum_is_master"] == 0 && b["quorum_quorate"] == 1)
                #expect(b["quorum_epoch"] == Double(status.epoch))
                #expect(b["quorum_cluster_size"] == Double(status.clusterSize) && b["quorum_majority"] == Double(status.majority))
                #expect(b["quorum_members{state=\"connected\"}"] == Double(status.connected))
                #expect(b["quorum_role{role=\"slave\"}"] == 1 && b["quorum_role{role=\"master\"}"] == 0)
                #expect(b["quorum_build_info{protocol=\"\(status.protocolVersion ?? 0)\",version=\"\(BuildInfo.version)\"}"] == 1)
                let a = try await Self.scrape(c, port: ports["A"]!)
                #expect(a["quorum_is_master"] == 1 && a["quorum_role{role=\"master\"}"] == 1)
                #expect(a["quorum_hook_runs_total{hook=\"master\",result=\"ok\"}"] == 1, "\(a.filter { $0.key.hasPrefix("quorum_hook") })")

                try await c.kill("A")
                try await c.waitUntil("B is master of B and C") { await c.agree(master: "B", members: ["B", "C"]) }
                let after = try await c.requireStatus("B")
                try await c.waitUntil("B's master hook is counted") {
                    (try? await Self.scrape(c, port: ports["B"]!))?["quorum_hook_runs_total{hook=\"master\",result=\"ok\"}"] == 1
                }
                b = try await Self.scrape(c, port: ports["B"]!)
                #expect(b["quorum_is_master"] == 1 && b["quorum_epoch"] == Double(after.epoch))
                #expect(b["quorum_failover_duration_seconds_count"] == 1, "one failover seen by B")
                #expect((b["quorum_master_changes_seen_total"] ?? 0) >= 2)
                #expect(b["quorum_members{state=\"lost\"}"] == 1)

                // D's metrics port is B's: D runs and says so; B keeps serving.
                try c.start("D", ["--metrics-listen", "127.0.0.1:\(ports["B"]!)"])
                try await c.waitUntil("D joins as a slave of B and warns about its metrics port") {
                    guard let d = await c.status("D") else { return false }
                    return d.master == "B" && (d.warnings ?? []).contains { $0.hasPrefix("metrics: not listening on 127.0.0.1:\(ports["B"]!)") }
                }
                #expect(try await Self.scrape(c, port: ports["B"]!)["quorum_is_master"] == 1)
            }
        }
    }
}
