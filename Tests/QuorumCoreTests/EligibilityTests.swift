import QuorumCore
import Testing

/// Priorities, preemption, standby and witnesses in the core (protocol 3): preferences among
/// members that may be master, never vote weights.
@Suite("Eligibility and priorities", .onOwnThread)
struct EligibilityTests {
    static let births: [String: Int64] = ["A": 1_000, "B": 2_000, "C": 3_000]

    static func start(_ net: inout ScriptedNet, _ name: String, port: UInt16, _ e: Eligibility = Eligibility()) -> Int {
        net.start(name, birth: births[name]!, port: port) { $0.eligibility = e }
    }

    /// The time of the first hook of `role` on process `i` after `after` (global nanoseconds).
    static func hookTime(_ net: ScriptedNet, _ i: Int, _ role: Role, after: Int64 = 0) -> Int64? {
        net.hookLog.first { $0.process == i && $0.run.role == role && $0.time >= after }?.time
    }

    @Test("the frame round-trips, bad flags and delays are refused, and a build of protocol 2 skips it whole")
    func wire() throws {
        let e = Eligibility(priority: 200, preempt: false, preemptDelay: .milliseconds(1500), standby: true, health: .failing, witness: false)
        let bytes = WireFormat.encode(.eligibility(e))
        #expect(try WireFormat.decode(bytes) == .message(.eligibility(e), consumed: bytes.count))
        #expect(try WireFormat.decode(bytes, speaking: 2) == .unsupportedVersion(3, consumed: bytes.count))
        var badFlags = bytes
        badFlags[WireFormat.headerSize + 1] = 8
        #expect(throws: WireError.self) { try WireFormat.decode(badFlags) }
        var badHealth = bytes
        badHealth[WireFormat.headerSize + 2] = 9
        #expect(throws: WireError.self) { try WireFormat.decode(badHealth) }
        var longDelay = bytes
        for k in 0..<4 { longDelay[WireFormat.headerSize + 3 + k] = 0xFF }
        #expect(throws: WireError.self) { try WireFormat.decode(longDelay) }
    }

    @Test("the highest priority is master from the start, whatever the metric says")
    func priorityWinsAtStart() {
        var net = ScriptedNet()
        let a = Self.start(&net, "A", port: 7001)
        let b = Self.start(&net, "B", port: 7002, Eligibility(priority: 200))
        let c = Self.start(&net, "C", port: 7003)
        #expect(net.run(until: .seconds(3)) { $0.masters == [b] })
        net.run(for: .seconds(2))
        #expect(net.masters == [b])
        #expect(net.hooks(of: a).map(\.role) == [.slave] && net.hooks(of: c).map(\.role) == [.slave])
        #expect(net.violations == [])
    }

    @Test("a higher priority that starts later preempts after the master's delay, in order: the old slave hook before the new master hook")
    func preemptionWaitsAndIsPlanned() {
        var net = ScriptedNet()
        let delay = Duration.seconds(2)
        let a = Self.start(&net, "A", port: 7001, Eligibility(preemptDelay: delay))
        let b = Self.start(&net, "B", port: 7002, Eligibility(preemptDelay: delay))
        #expect(net.run(until: .seconds(3)) { $0.masters == [a] })
        let joined = net.now
        let c = Self.start(&net, "C", port: 7003, Eligibility(priority: 200, preemptDelay: delay))
        net.run(for: .milliseconds(1500))
        #expect(net.masters == [a], "no join-time takeover by priority")
        #expect(net.core(a).status(now: net.local(a)).pendingPreemption?.name == "C")
        #expect(net.run(until: .seconds(2)) { $0.masters == [c] })
        let demoted = Self.hookTime(net, a, .slave, after: joined)
        let promoted = Self.hookTime(net, c, .master, after: joined)
        #expect(demoted != nil && promoted != nil && demoted! < promoted!, "A's slave hook \(String(describing: demoted)) before C's master hook \(String(describing: promoted))")
        #expect(promoted.map { $0 - joined >= delay.nanosecondsClamped } == true)
        #expect(net.masters == [c] && net.hooks(of: b).map(\.role) == [.slave])
        #expect(net.violations == [])
    }

    @Test("a master that may not be preempted keeps the role against a higher priority")
    func noPreemptKeepsMaster() {
        var net = ScriptedNet()
        let noPreempt = Eligibility(preempt: false, preemptDelay: .zero)
        let a = Self.start(&net, "A", port: 7001, noPreempt)
        _ = Self.start(&net, "B", port: 7002, noPreempt)
        #expect(net.run(until: .seconds(3)) { $0.masters == [a] })
        _ = Self.start(&net, "C", port: 7003, Eligibility(priority: 250, preempt: false, preemptDelay: .zero))
        net.run(for: .seconds(3))
        #expect(net.masters == [a])
        #expect(net.violations == [])
    }

    @Test("a master put in standby steps down in order; standby off does not take the role back")
    func standbyStepsDown() {
        var net = ScriptedNet()
        let a = Self.start(&net, "A", port: 7001)
        let b = Self.start(&net, "B", port: 7002)
        _ = Self.start(&net, "C", port: 7003)
        #expect(net.run(until: .seconds(3)) { $0.masters == [a] })
        let t0 = net.now
        net.handle(.eligibilityChanged(Eligibility(standby: true)), on: a)
        #expect(net.run(until: .seconds(2)) { $0.masters == [b] })
        let demoted = Self.hookTime(net, a, .slave, after: t0)
        let promoted = Self.hookTime(net, b, .master, after: t0)
        #expect(demoted != nil && promoted != nil && demoted! < promoted!)
        #expect(net.core(a).status(now: net.local(a)).ineligibleReasons == [.standby])
        net.handle(.eligibilityChanged(Eligibility()), on: a)
        net.run(for: .seconds(3))
        #expect(net.masters == [b], "A is older (better by age) but regained eligibility: no takeover")
        #expect(net.violations == [])
    }

    @Test("no eligible member: no master, and status says why; a witness never stands and its role is witness")
    func noEligibleMemberAndWitness() {
        var net = ScriptedNet()
        let a = Self.start(&net, "A", port: 7001, Eligibility(witness: true))
        let b = Self.start(&net, "B", port: 7002, Eligibility(priority: 0))
        let c = Self.start(&net, "C", port: 7003, Eligibility(standby: true))
        net.run(for: .seconds(3))
        #expect(net.masters.isEmpty)
        #expect(net.core(b).status(now: net.local(b)).noMasterReason == .noEligibleMember)
        #expect(net.core(a).status(now: net.local(a)).ineligibleReasons == [.witness])
        net.handle(.eligibilityChanged(Eligibility()), on: c)
        #expect(net.run(until: .seconds(3)) { $0.masters == [c] })
        #expect(net.run(until: .seconds(1)) { $0.core(a).role == .witness }, "where another node would be slave")
        #expect(net.hooks(of: a).allSatisfy { $0.role != .master })
        #expect(net.violations == [])
    }
}
