import QuorumCore
import Testing
@testable import QuorumNode

@Suite("quorumd settings: the health check, reloadable preferences, completion")
struct HealthCheckSettingsTests {
    @Test("the command is split like shell words, without a shell; defaults 1s, timeout = interval, fall 3, rise 2")
    func parsing() throws {
        let s = try parse(["-n", "B", "--check", #"/usr/bin/check-haproxy --port 80 'a b' "c\"d" e\ f"#])
        let check = try #require(s.check)
        #expect(check.command == ["/usr/bin/check-haproxy", "--port", "80", "a b", #"c"d"#, "e f"])
        #expect(check.interval == .seconds(1) && check.timeout == .seconds(1) && check.fall == 3 && check.rise == 2)
        #expect(s.coreConfiguration.eligibility.health == .unknown && s.coreConfiguration.eligibility.ineligibleReasons == [.checkUnknown])
        let t = try parse(["-n", "B", "--check", "true", "--check-interval", "200ms", "--check-fall", "1", "--check-rise", "5"])
        #expect(t.check?.interval == .milliseconds(200) && t.check?.timeout == .milliseconds(200) && t.check?.fall == 1 && t.check?.rise == 5)
        let f = try parse(["-n", "B", "--config", "/q.conf"], files: ["/q.conf": "check = sleep 1\ncheck-timeout = 2.5s\n"])
        #expect(f.check?.command == ["sleep", "1"] && f.check?.timeout == .milliseconds(2500))
        #expect(try parse(["-n", "B"]).check == nil)
        // What a reload compares: the command as the operator would write it again.
        #expect(s.check?.commandText == #"/usr/bin/check-haproxy --port 80 'a b' 'c"d' 'e f'"#)
    }

    @Test("bad check settings are one-line errors", arguments: [
        (["--check", "'open"], "a single quote is not closed"),
        (["--check", "\"open"], "a double quote is not closed"),
        (["--check", "  "], "the check command is empty"),
        (["--check", "true", "--check-interval", "50ms"], "is not a check interval from 100ms to 3600s"),
        (["--check", "true", "--check-timeout", "61s"], "is not a check timeout"),
        (["--check", "true", "--check-fall", "0"], "is not a number of failures from 1 to 100"),
        (["--check", "true", "--check-rise", "101"], "is not a number of passes from 1 to 100"),
        (["--check-interval", "2s"], "it needs a check (--check)"),
        (["--witness", "--check", "true"], "--witness cannot be combined with --check"),
    ])
    func refused(_ flags: [String], _ expected: String) {
        let message = failure(["-n", "B"] + flags)
        #expect(message?.contains(expected) == true, "\(String(describing: message))")
    }

    @Test("a check program that cannot start is refused: a missing path, not executable, not in PATH")
    func programMustStart() throws {
        #expect(NamedFiles.checkProblem(try parse(["-n", "B", "--check", "/nonexistent/x"])) == "check /nonexistent/x: file not found")
        #expect(NamedFiles.checkProblem(try parse(["-n", "B", "--check", "/etc/passwd"]))?.contains("not executable") == true)
        #expect(NamedFiles.checkProblem(try parse(["-n", "B", "--check", "sh -c true"]), path: "/usr/bin:/bin") == nil)
        #expect(NamedFiles.checkProblem(try parse(["-n", "B", "--check", "sh"]), path: "/nonexistent") == "check sh: not found in PATH")
    }

    @Test("a reload applies priority, preemption and the check; a witness still needs a restart")
    func reloadable() throws {
        let running = try parse(["-n", "B"])
        let plan = ReloadPlan.between(running, try parse(["-n", "B", "--priority", "200", "--preempt", "no", "--check", "true"]))
        #expect(!plan.isRefused && Set(plan.changes.map(\.key)).isSuperset(of: ["priority", "preempt", "check", "check-interval"]))
        #expect(ReloadPlan.between(running, try parse(["-n", "B", "--witness"])).isRefused)
    }

    @Test("the health verdict: the first pass at once, fall failures to fail, rise passes to pass again")
    func verdict() {
        var h = HealthState()
        func run(_ passed: Bool) -> HealthState.Transition? {
            h.record(passed: passed, result: passed ? "exit 0" : "exit 1", output: nil, startedAt: 0, took: .zero, fall: 2, rise: 2)
        }
        #expect(run(false) == nil && h.verdict == .unknown)
        #expect(run(true) == .passing(first: true) && h.verdict == .passing)
        #expect(run(false) == nil && h.verdict == .passing)
        #expect(run(false) == .failing(failures: 2) && h.verdict == .failing)
        #expect(run(true) == nil && h.verdict == .failing)
        #expect(run(true) == .passing(first: false) && h.verdict == .passing)
        var never = HealthState()
        _ = never.record(passed: false, result: "timeout", output: nil, startedAt: 0, took: .zero, fall: 2, rise: 1)
        #expect(never.record(passed: false, result: "timeout", output: nil, startedAt: 0, took: .zero, fall: 2, rise: 1) == .failing(failures: 2))
    }

    @Test("quorumd --generate-completion-script bash names every flag, the new ones included")
    func completion() throws {
        guard case .help(let script) = try NodeSettings.parse(
            arguments: ["--generate-completion-script", "bash"], environment: [:], hostname: "h", readFile: { _ in "" }) else {
            Issue.record("no completion script")
            return
        }
        for flag in ["--check", "--check-interval", "--check-timeout", "--check-fall", "--check-rise", "--priority", "--witness", "--preempt-delay"] {
            #expect(script.contains(flag), "\(flag)")
        }
    }
}
