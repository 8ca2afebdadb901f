import Foundation
import QuorumControl
import Testing

/// A bad command line, described for the test report.
struct BadCommandLine: Sendable, CustomTestStringConvertible {
    /// Replaces the usual positionals (`127.0.0.1 PORT 127.255.255.255 BPORT`) when set;
    /// `PORT` and `BPORT` are replaced by this test's ports.
    var positionals: [String]? = nil
    var flags: [String] = []
    var testDescription: String { ((positionals ?? []) + flags).joined(separator: " ") }

    static let all: [BadCommandLine] = [
        .init(flags: ["--no-such-flag"]),
        .init(flags: ["-n", "bad name!"]),
        .init(flags: ["-n", String(repeating: "x", count: 65)]),
        .init(flags: ["--on-quorum-loss", "maybe"]),
        .init(flags: ["--hook-timeout", "soon"]),
        .init(flags: ["--expected-nodes", "zero"]),
        .init(flags: ["--priority", "256"]),
        .init(flags: ["--preempt-delay", "2h"]),
        .init(flags: ["--witness", "--priority", "5"]),
        .init(flags: ["--witness", "--check", "true"]),
        .init(flags: ["--check", "/nonexistent/quorum-check"]),
        .init(flags: ["--check", "no-such-program-anywhere"]),
        .init(flags: ["--check", "'unclosed"]),
        .init(flags: ["--check", "true", "--check-interval", "5ms"]),
        .init(flags: ["--check", "true", "--check-timeout", "2m"]),
        .init(flags: ["--check", "true", "--check-fall", "0"]),
        .init(flags: ["--check-rise", "2"]),
        .init(flags: ["--config", "/nonexistent/quorum-integration-test.conf"]),
        .init(positionals: ["127.0.0.1", "70000", "127.255.255.255", "BPORT"]),
        .init(positionals: ["127.0.0.1", "PORT", "not-an-address", "BPORT"]),
        .init(positionals: ["999.1.1.1", "PORT", "127.255.255.255", "BPORT"]),
        // Seeds are checked before anything is said about them (no warning line first).
        .init(flags: ["--peer", "host:0"]),
        .init(flags: ["--peer", "[::1"]),
        .init(flags: ["--peer", "fe80::1"]),
        .init(flags: ["--peer", String(repeating: "h", count: 300)]),
    ]
}

extension IntegrationTests {
    @Suite("Command line")
    struct CommandLine {
        @Test("A bad flag or setting: exit status 2, one line on stderr, nothing started or sent", arguments: BadCommandLine.all)
        func badCommandLine(_ bad: BadCommandLine) async throws {
            try await withCluster { c in
                let node = try c.prepare("X")
                let listener = try DiscoveryListener(port: c.broadcastPort)
                let positionals = (bad.positionals ?? ["127.0.0.1", "PORT", LocalCluster.broadcastAddress, "BPORT"]).map {
                    $0 == "PORT" ? String(node.port) : $0 == "BPORT" ? String(c.broadcastPort) : $0
                }
                var arguments = positionals + ["--state-dir", node.stateDirectory, "--control-socket", node.socketPath]
                if !bad.flags.contains("-n") { arguments += ["-n", "X"] }
                arguments += bad.flags
                let run = try await runCommand(
                    c.quorumd, arguments, environment: ["PATH": "/usr/bin:/bin"], scratchDirectory: c.directory,
                    timeout: .seconds(10))
                #expect(run.status == .exited(2), "\(run)")
                let lines = run.standardError.split(separator: "\n", omittingEmptySubsequences: true)
                #expect(lines.count == 1, "exactly one line on stderr: \(run.standardError.debugDescription)")
                #expect(!FileManager.default.fileExists(atPath: node.socketPath), "no control socket was created")
                #expect(listener.queuedDatagrams() == 0, "nothing was sent to the discovery port")
            }
        }

        @Test("--help prints the usage and exits 0")
        func help() async throws {
            try await withCluster { c in
                let run = try await runCommand(
                    c.quorumd, ["--help"], environment: ["PATH": "/usr/bin:/bin"], scratchDirectory: c.directory)
                #expect(run.status == .exited(0), "\(run)")
                #expect(run.standardOutput.contains("--use-port-instead-of-life-time"))
                #expect(run.standardOutput.contains("--on-quorum-loss"))
            }
        }

        @Test("The original's spellings: -d -m=X.py -s=Y.py -n=B -d, with .py hooks run by python3")
        func originalExampleLine() async throws {
            try await withCluster { c in
                let node = try c.prepare("B")
                let log = c.directory + "/py-hooks.log"
                // Like the original's i_am_master.py: no #! line, not executable.
                for kind in ["master", "slave"] {
                    try c.writeFile(
                        c.directory + "/i_am_\(kind).py",
                        """
                        import os, time
                        with open(\(String(reflecting: log)), "a") as f:
                            f.write("%d %s %s %s \(kind)\\n" % (time.monotonic_ns(), os.environ.get("QUORUM_NAME"),
                                    os.environ.get("QUORUM_ROLE"), os.environ.get("QUORUM_EPOCH")))
                        print("I am \(kind)")

                        """, mode: 0o644)
                }
                // `quorumd 0.0.0.0 6170 -d -m=i_am_master.py -s=i_am_slave.py -n=B -d`, on loopback
                // and with a test-owned state directory and control socket.
                try c.launch("B", arguments: [
                    "127.0.0.1", String(node.port), LocalCluster.broadcastAddress, String(c.broadcastPort),
                    "-d", "-m=\(c.directory)/i_am_master.py", "-s=\(c.directory)/i_am_slave.py", "-n=B", "-d",
                    "--state-dir=\(node.stateDirectory)", "--control-socket=\(node.socketPath)",
                ])
                try await c.waitUntil("B alone is master") {
                    await c.agree(master: "B", members: ["B"], clusterSize: 1, lost: 0)
                }
                let epoch = try await c.requireStatus("B").epoch
                try await c.waitUntil("B's master hook (python3 i_am_master.py) ran", timeout: .seconds(15)) {
                    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                    return text.contains(" B master \(epoch) master")
                }
                try await c.waitUntil("the hook's output is in the node's log") { c.log("B").contains("I am master") }
            }
        }

        @Test("--use_port_instead_of_life_time (the original's spelling) selects the port metric")
        func underscoreSpelling() async throws {
            try await withCluster { c in
                try c.start("A", ["--use_port_instead_of_life_time"])
                try await c.waitUntil("A alone is master") {
                    await c.agree(master: "A", members: ["A"], clusterSize: 1)
                }
                #expect(try await c.requireStatus("A").metric == "port")
            }
        }
    }
}
