import QuorumCore
import Testing
@testable import QuorumNode

@Suite("quorumd settings: priority, preemption, witness")
struct EligibilitySettingsTests {
    @Test("defaults: priority 100, preempt yes after 10 s, not a witness; the core gets them")
    func defaults() throws {
        let s = try parse(["-n", "B"])
        #expect(s.priority == 100 && s.preempt && s.preemptDelay == .seconds(10) && !s.witness)
        #expect(s.coreConfiguration.eligibility == Eligibility())
    }

    @Test("flags and file keys, delays as 500ms, 10s or plain seconds")
    func values() throws {
        let s = try parse(["-n", "B", "--priority", "0", "--preempt", "no", "--preempt-delay", "500ms"])
        #expect(s.priority == 0 && !s.preempt && s.preemptDelay == .milliseconds(500))
        #expect(s.coreConfiguration.eligibility.ineligibleReasons == [.priorityZero])
        let f = try parse(["-n", "B", "--config", "/q.conf"], files: ["/q.conf": "priority = 250\npreempt-delay = 2.5\nwitness = no\n"])
        #expect(f.priority == 250 && f.preemptDelay == .milliseconds(2500) && !f.witness)
        #expect(try parse(["-n", "B", "--preempt-delay", "0"]).preemptDelay == .zero)
        #expect(try parse(["-n", "W", "--witness"]).coreConfiguration.eligibility.witness)
    }

    @Test("bad values and a witness with hooks or a priority are one-line errors", arguments: [
        (["--priority", "256"], "--priority: '256' is not a priority"),
        (["--priority", "high"], "is not a priority"),
        (["--preempt", "maybe"], "is not true or false"),
        (["--preempt-delay", "3601s"], "is not a delay from 0 to 3600s"),
        (["--preempt-delay", "soon"], "is not a delay"),
        (["--witness", "-m", "/bin/true"], "--witness cannot be combined with --master-hook"),
        (["--witness", "--slave-hook", "/bin/true"], "--witness cannot be combined with --slave-hook"),
        (["--witness", "--priority", "100"], "--witness cannot be combined with --priority"),
    ])
    func refused(_ flags: [String], _ expected: String) {
        let message = failure(["-n", "B"] + flags)
        #expect(message?.contains(expected) == true, "\(String(describing: message))")
    }
}
