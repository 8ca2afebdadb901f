import Foundation
import QuorumControl
import Testing

/// `quorumctl watch` against real processes: the events of a failover, in order, and a
/// restarted node seen again with `--reconnect`.
extension IntegrationTests {
    @Suite("Watch")
    struct Watch {
        /// The JSON events a watcher wrote so far (complete lines only).
        static func events(_ path: String) -> [WatchEvent] {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            return text.split(separator: "\n", omittingEmptySubsequences: true).compactMap { try? WatchEvent.parse(Array($0.utf8)) }
        }

        @Test("watch --json sees a crash failover as events in order, and with --reconnect a restarted node as a new snapshot")
        func failoverEvents() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C"])
                try await c.waitUntil("A is master of three") { await c.agree(master: "A", members: ["A", "B", "C"]) }
                let out = c.directory + "/watch.jsonl", err = c.directory + "/watch.err"
                let b = try c.node("B")
                let watcher = try spawnChild(
                    executable: c.quorumctl, arguments: ["--socket", b.socketPath, "watch", "--json", "--reconnect"],
                    environment: ["PATH": "/usr/bin:/bin"], output: .separate(out: out, err: err))
                defer {
                    kill(watcher, SIGKILL)
                    _ = waitForChild(watcher, timeout: .seconds(5))
                }
                try await c.waitUntil("the watch begins with B's snapshot") { Self.events(out).first?.type == .snapshot }
                let snapshot = Self.events(out)[0]
                #expect(snapshot.node == "B" && snapshot.role == "slave" && snapshot.master == "A" && snapshot.members == ["A", "B", "C"], "\(snapshot)")

                try await c.kill("A")
                try await c.waitUntil("B is master of B and C") { await c.agree(master: "B", members: ["B", "C"]) }
                let epoch = try await c.requireStatus("B").epoch
                try await c.waitUntil("the watch saw B's master hook finish") { Self.events(out).contains { $0.type == .hookFinished && $0.hook == "master" } }
                let seen = Self.events(out)
                func index(_ what: String, _ match: (WatchEvent) -> Bool) throws -> Int {
                    let found = seen.firstIndex(where: match)
                    return try #require(found, "no \(what) in \(seen.map(\.type.rawValue))")
                }
                let lost = try index("peer-lost A") { $0.type == .peerLost && $0.peer == "A" }
                let role = try index("role master") { $0.type == .role && $0.role == "master" && $0.previousRole == "slave" }
                let master = try index("master B") { $0.type == .master && $0.master == "B" }
                let started = try index("master hook started") { $0.type == .hookStarted && $0.hook == "master" }
                let finished = try index("master hook finished") { $0.type == .hookFinished && $0.hook == "master" }
                #expect(lost < role && role < started && started < finished && lost < master, "\(seen.map(\.type.rawValue))")
                #expect(seen[role].epoch == epoch && seen[master].epoch == epoch && seen[started].epoch == epoch)
                #expect(seen[finished].outcome == "exit 0" && (seen[finished].durationMilliseconds ?? -1) >= 0)
                #expect(seen.allSatisfy { $0.instance == snapshot.instance && $0.node == "B" })

                // B restarts: the watch goes on with a new snapshot of a new instance.
                try await c.kill("B")
                try await c.restart("B")
                try await c.waitUntil("a second snapshot, of B's new instance") {
                    Self.events(out).contains { $0.type == .snapshot && $0.instance != snapshot.instance }
                }
            }
        }
    }
}
