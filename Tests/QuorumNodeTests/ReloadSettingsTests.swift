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
        // Every bad value is reported, one line each, not only the first.
        let file = "priority = 300\nhook-timeout = soon\nlog-level = info\n"
        let bad = try NodeSettings.parse(arguments: ["-t", "-n", "B", "--config", "/q.conf", "--check-fall", "3"], environment: [:], hostname: "h") { _ in file }
        guard case .checkConfigFailed(let problems) = bad else {
            Issue.record("expected problems, got \(bad)")
            return
        }
        #expect(problems.count == 3, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("/q.conf:1: priority:") } && problems.contains { $0.hasPrefix("/q.conf:2: hook-timeout:") }
                && problems.contains { $0.hasPrefix("--check-fall:") })
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

@Suite("Metrics settings and registry")
struct MetricsSettingsTests {
    @Test("--metrics-listen takes IPv4, bracketed IPv6 and :PORT; anything else is one line")
    func endpoints() throws {
        #expect(try parse(["--metrics-listen", "127.0.0.1:9170"]).metricsListen == MetricsEndpoint(host: "127.0.0.1", port: 9170))
        #expect(try parse(["--metrics-listen", "[::1]:9170"]).metricsListen?.description == "[::1]:9170")
        #expect(try parse(["--metrics-listen", ":9170"]).metricsListen == MetricsEndpoint(host: "::", port: 9170))
        #expect(try parse([]).metricsListen == nil)
        for bad in ["9170", "::1:9170", "localhost:9170", "127.0.0.1:0", "127.0.0.1:70000", "[1.2.3.4]:1"] {
            #expect(failure(["--metrics-listen", bad])?.hasPrefix("quorumd: --metrics-listen: '\(bad)' is not ADDRESS:PORT") == true, "\(bad)")
        }
    }

    @Test("Every series is registered once at start and the whole registry emits")
    func registry() {
        let metrics = NodeMetrics(name: "B", cluster: "c", startedAtSeconds: 1)
        metrics.dropped("auth")
        metrics.dropped("something new")
        metrics.controlRequest(.status, ok: true)
        metrics.reloaded(applied: false)
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        for name in ["quorum_has_master", "quorum_is_master", "quorum_quorate", "quorum_epoch", "quorum_role", "quorum_members",
                     "quorum_master_changes_seen_total", "quorum_failover_duration_seconds", "quorum_hook_runs_total",
                     "quorum_hook_duration_seconds", "quorum_frames_dropped_total", "quorum_control_requests_total",
                     "quorum_config_reloads_total", "quorum_node_info", "quorum_build_info"] {
            #expect(text.contains("# TYPE \(name) "), "\(name)")
        }
        #expect(text.contains(#"quorum_frames_dropped_total{reason="auth"} 1"#))
        #expect(text.contains(#"quorum_frames_dropped_total{reason="other"} 1"#), "an unknown reason is counted as other: no label grows")
        #expect(text.contains("quorum_config_last_reload_successful 0.0"))
    }

    @Test("Every metric the shipped alert rules use is one the node exports")
    func alertRules() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let rules = try String(contentsOf: root.appendingPathComponent("packaging/prometheus/quorum-alerts.yml"), encoding: .utf8)
        let exported = String(decoding: NodeMetrics(name: "B", cluster: "c", startedAtSeconds: 1).exposition(), as: UTF8.self)
        let used = Set(rules.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }).filter { $0.hasPrefix("quorum_") }.map(String.init))
        #expect(used.count >= 6)
        for name in used { #expect(exported.contains("# TYPE \(name) "), "\(name) is used by an alert but not exported") }
    }
}

@Suite("--config-dir")
struct ConfigDirectoryTests {
    func parse(_ arguments: [String], files: [String: String]) throws(SettingsError) -> NodeSettings {
        let command = try NodeSettings.parse(arguments: arguments, environment: [:], hostname: "h", readFile: { path in
            guard let text = files[path] else { throw TestFailure("No such file or directory") }
            return text
        }, fileExists: { files[$0] != nil })
        guard case .run(let settings) = command else { throw SettingsError("expected settings") }
        return settings
    }

    @Test("quorum.conf, then NAME.conf, each only when it exists; --config files and flags win over them")
    func order() throws {
        var files = ["/etc/q/quorum.conf": "cluster = shared\nhook-timeout = 5\nlog-level = notice\n"]
        var s = try parse(["--config-dir", "/etc/q", "-n", "B"], files: files)
        #expect(s.cluster == "shared" && s.hookTimeout == .seconds(5) && s.configFiles == ["/etc/q/quorum.conf"])
        // B.conf made later (a reload reads it): it wins over the shared file.
        files["/etc/q/B.conf"] = "hook-timeout = 7\n"
        files["/x.conf"] = "log-level = error\n"
        s = try parse(["--config-dir", "/etc/q", "-n", "B", "--config", "/x.conf"], files: files)
        #expect(s.hookTimeout == .seconds(7) && s.logLevel == .error && s.configFiles == ["/etc/q/quorum.conf", "/etc/q/B.conf", "/x.conf"])
        s = try parse(["--config-dir", "/etc/q", "-n", "B", "--hook-timeout", "9"], files: files)
        #expect(s.hookTimeout == .seconds(9))
        // A file that is there but cannot be read is an error that names it.
        #expect(throws: SettingsError("--config-dir /etc/q/C.conf: cannot read the file (No such file or directory)")) {
            _ = try NodeSettings.parse(arguments: ["--config-dir", "/etc/q", "-n", "C"], environment: [:], hostname: "h",
                                       readFile: { _ in throw TestFailure("No such file or directory") }, fileExists: { $0 == "/etc/q/C.conf" })
        }
        // No files at all: the defaults.
        #expect(try parse(["--config-dir", "/etc/none", "-n", "B"], files: [:]).cluster == NodeSettings.Defaults.cluster)
    }
}
