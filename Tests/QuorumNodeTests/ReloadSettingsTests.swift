import Foundation
import Logging
import QuorumControl
import QuorumCore
import QuorumTestSupport
import Testing
@testable import QuorumNode

@Suite("Log level, version, config check and reload plans")
struct ReloadSettingsTests {
    @Test("--log-level takes every swift-log level; -d stays debug however often; --log-level wins over -d")
    func logLevels() throws {
        #expect(try parse([]).logLevel == .info)
        #expect(try parse(["-d", "-d", "-d"]).logLevel == .debug, "-d never escalates to trace")
        for name in NodeSettings.logLevelNames {
            #expect(try parse(["--log-level", name]).logLevel.rawValue == name)
        }
        #expect(try parse(["-d", "--log-level", "warning"]).logLevel == .warning)
        #expect(try parse(["--config", "f"], files: ["f": "log-level = ERROR\n"]).logLevel == .error)
        #expect(failure(["--log-level", "loud"]) == "quorumd: --log-level: 'loud' is not a log level: use trace, debug, info, notice, warning, error, critical")
    }

    @Test("--version prints the version, the protocol and the build; the package's changelog carries the same version")
    func version() throws {
        let command = try NodeSettings.parse(arguments: ["--version"], environment: [:], hostname: "h") { _ in "" }
        guard case .version(let text) = command else {
            Issue.record("expected the version, got \(command)")
            return
        }
        let first = text.split(separator: "\n").first.map(String.init) ?? ""
        #expect(first.hasPrefix("quorumd \(BuildInfo.version) (protocol \(WireFormat.version), build "), "\(first)")
        // packaging/debian/changelog: `quorum (0.2.0-1) unstable; …` on its first line.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let changelog = try String(contentsOf: root.appendingPathComponent("packaging/debian/changelog"), encoding: .utf8)
        let line = changelog.split(separator: "\n").first.map(String.init) ?? ""
        #expect(line.hasPrefix("quorum (\(BuildInfo.version)-"), "changelog says \(line), the binaries \(BuildInfo.version)")
    }

    @Test("-t/--check-config parses like a start and asks for a check instead")
    func checkConfig() throws {
        for flag in ["-t", "--check-config"] {
            let command = try NodeSettings.parse(arguments: [flag, "-n", "B"], environment: [:], hostname: "h") { _ in "" }
            guard case .checkConfig(let settings) = command else {
                Issue.record("expected a check, got \(command)")
                continue
            }
            #expect(settings.name == "B")
        }
    }

    @Test("A reload plan changes only what a running node can take; anything else refuses the whole reload")
    func plans() throws {
        let running = try parse(["-n", "A", "-m", "/a", "--hook-timeout", "30", "--peer", "h1"])
        let same = ReloadPlan.between(running, running)
        #expect(same.changes.isEmpty && !same.isRefused && same.summary == "no changes")

        let hooks = ReloadPlan.between(running, try parse(["-n", "A", "-m", "/b", "--hook-timeout", "5", "--peer", "h1,h2", "--log-level", "debug"]))
        #expect(!hooks.isRefused)
        #expect(hooks.summary == "log-level info -> debug, master-hook /a -> /b, hook-timeout 30 -> 5, peer h1 -> h1, h2")

        let restart = ReloadPlan.between(running, try parse(["-n", "A", "-m", "/b", "--cluster", "x", "--tie-breaker"]))
        #expect(restart.refusals == ["cluster quorum -> x needs a restart", "tie-breaker false -> true needs a restart"])

        let keyOn = ReloadPlan.between(running, try parse(["-n", "A", "-m", "/a", "--hook-timeout", "30", "--peer", "h1", "--key-file", "/k"]))
        #expect(keyOn.refusals.count == 1 && keyOn.refusals[0].hasPrefix("key-file: turning the cluster key on needs a restart"))

        let keyed = try parse(["-n", "A", "--key-file", "/k"])
        #expect(ReloadPlan.between(keyed, keyed, keysChanged: true).summary == "key-file keys of /k -> new keys")
    }

    @Test("The key file check: unreadable, open to others, malformed: one line each")
    func keyFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let path = directory + "/cluster.key"
        #expect(throws: SettingsError("cannot read key file \(path): No such file or directory")) { try NamedFiles.loadKeyring(path) }
        try writeTextFile(path, "1 " + String(repeating: "ab", count: 32) + "\n", mode: 0o644)
        #expect(throws: SettingsError("key file \(path) is readable or writable by others (mode 644); chmod 600 it")) { try NamedFiles.loadKeyring(path) }
        try writeTextFile(path, "1 xyz\n", mode: 0o600)
        #expect(throws: SettingsError("\(path):1: expected `ID HEX` (an id 0-255 and 64 hex digits); make a key with `quorumctl keygen`")) {
            try NamedFiles.loadKeyring(path)
        }
        try writeTextFile(path, "1 " + String(repeating: "ab", count: 32) + "\n", mode: 0o600)
        let ring = try NamedFiles.loadKeyring(path)
        #expect(ring.holdsSameKeys(as: try NamedFiles.loadKeyring(path)))
        try writeTextFile(path, "1 " + String(repeating: "ab", count: 32) + "\n2 " + String(repeating: "cd", count: 32) + "\n", mode: 0o600)
        #expect(!ring.holdsSameKeys(as: try NamedFiles.loadKeyring(path)), "a rotation step is a change")
    }
}
