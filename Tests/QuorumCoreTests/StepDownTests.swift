import QuorumCore
import Testing

/// The planned step-down in the core: any node may ask, the master decides, the handover is
/// in order (old slave hook before the new master hook) and leaves no preference behind.
@Suite("Planned step-down", .onOwnThread)
struct StepDownTests {
    static func cluster(_ es: [Eligibility] = [Eligibility(), Eligibility(), Eligibility()]) -> (ScriptedNet, [Int]) {
        var net = ScriptedNet()
        let names = ["A", "B", "C", "D"]
        let ids = es.indices.map { k in
            net.start(names[k], birth: Int64(1_000 * (k + 1)), port: UInt16(7001 + k)) { $0.eligibility = es[k] }
        }
        return (net, ids)
    }

    static func ask(_ net: inout ScriptedNet, _ i: Int, to target: String? = nil, timeout: Duration = .seconds(10), id: UInt64 = 1) -> StepDownAnswer? {
        net.handle(.stepDownRequested(StepDownRequest(id: id, target: target, timeout: timeout)), on: i)
        _ = net.run(until: .seconds(1)) { net in net.stepDownAnswers.contains { $0.process == i && $0.id == id } }
        return net.stepDownAnswers.last { $0.process == i && $0.id == id }?.answer
    }

    /// Until every running process follows process `m` as master.
    static func agree(_ net: inout ScriptedNet, on m: Int, _ ids: [Int]) -> Bool {
        let name = net.core(m).identity.name
        return net.run(until: .seconds(3)) { net in
            net.masters == [m] && ids.allSatisfy { net.core($0).currentMaster(now: net.local($0))?.name == name }
        }
    }

    static func refusal(_ answer: StepDownAnswer?) -> StepDownRefusal.Reason? {
        if case .refused(let r) = answer { return r.reason }
        return nil
    }

    @Test("asked on a slave without a target: the best other member takes over, after the old slave hook, and no preference remains")
    func forwardedWithoutTarget() {
        var (net, ids) = Self.cluster()
        let (a, b, c) = (ids[0], ids[1], ids[2])
        #expect(Self.agree(&net, on: a, ids))
        let asked = net.now
        let answer = Self.ask(&net, c)
        #expect(answer == .accepted(from: "A", to: "B", epoch: net.core(a).fencingEpoch))
        #expect(net.run(until: .seconds(2)) { $0.masters == [b] })
        let demoted = net.hookLog.first { $0.process == a && $0.run.role == .slave && $0.time >= asked }?.time
        let promoted = net.hookLog.first { $0.process == b && $0.run.role == .master && $0.time >= asked }?.time
        #expect(demoted != nil && promoted != nil && demoted! < promoted!)
        // Quick: no discovery wait or back-off stands between the two hooks.
        #expect(promoted.map { Duration.nanoseconds($0 - asked) < .milliseconds(100) } == true)
        // Nothing lasting: B stays master (the metric prefers A, but an age-ordered cluster never
        // moves the role by the metric), and no handover lingers past its timeout.
        net.run(for: .seconds(12))
        #expect(net.masters == [b])
        #expect(net.core(a).status(now: net.local(a)).noMasterReason == nil)
        #expect(net.violations == [])
    }

    @Test("with a target: that member takes over; asked on the master itself")
    func withTarget() {
        var (net, ids) = Self.cluster()
        let (a, c) = (ids[0], ids[2])
        #expect(net.run(until: .seconds(3)) { $0.masters == [a] })
        #expect(Self.ask(&net, a, to: "C") == .accepted(from: "A", to: "C", epoch: net.core(a).fencingEpoch))
        #expect(net.run(until: .seconds(2)) { $0.masters == [c] })
        #expect(net.violations == [])
    }

    @Test("refusals change nothing: unknown, the master itself, ineligible, a handover under way, no master, no other eligible member")
    func refusals() {
        var (net, ids) = Self.cluster([Eligibility(), Eligibility(standby: true), Eligibility(priority: 0)])
        let (a, b) = (ids[0], ids[1])
        #expect(Self.agree(&net, on: a, ids))
        let epoch = net.core(a).fencingEpoch
        #expect(Self.refusal(Self.ask(&net, b, to: "Z", id: 1)) == .unknownMember)
        #expect(Self.refusal(Self.ask(&net, b, to: "A", id: 2)) == .alreadyMaster)
        #expect(Self.refusal(Self.ask(&net, b, to: "B", id: 3)) == .targetIneligible)
        #expect(Self.refusal(Self.ask(&net, a, to: "C", id: 4)) == .targetIneligible)
        #expect(Self.refusal(Self.ask(&net, a, id: 5)) == .noOtherEligible)
        net.run(for: .seconds(1))
        #expect(net.masters == [a] && net.core(a).fencingEpoch == epoch)

        var (net2, ids2) = Self.cluster()
        #expect(net2.run(until: .seconds(3)) { $0.masters == [ids2[0]] })
        // Two requests in one instant: the second finds the first under way.
        net2.handle(.stepDownRequested(StepDownRequest(id: 7, target: "B")), on: ids2[0])
        #expect(Self.refusal(Self.ask(&net2, ids2[0], to: "C", id: 8)) == .busy)
        #expect(net2.run(until: .seconds(2)) { $0.masters == [ids2[1]] })
        #expect(net2.violations == [])

        var lone = ScriptedNet()
        let only = lone.start("A", birth: 1_000, port: 7001)
        lone.run(for: .milliseconds(100))
        #expect(Self.refusal(Self.ask(&lone, only, id: 9)) == .noMaster)
    }

    @Test("a target that dies during the handover: after the timeout the old master may be elected again")
    func targetDiesOldMasterReturns() {
        var (net, ids) = Self.cluster([Eligibility(), Eligibility(priority: 0), Eligibility()])
        let (a, c) = (ids[0], ids[2])
        #expect(net.run(until: .seconds(3)) { $0.masters == [a] })
        #expect(Self.ask(&net, a, to: "C", timeout: .seconds(2)) != nil)
        net.kill(c)
        #expect(net.run(until: .seconds(5)) { $0.masters == [a] })
        #expect(net.violations == [])
    }

    @Test("the frames round-trip; a long refusal is cut at a character boundary; bad values are refused")
    func wire() throws {
        let frames: [Message] = [
            .stepDown(StepDownRequest(id: 42, target: "C", timeout: .seconds(3))),
            .stepDown(StepDownRequest(id: 43)),
            .stepDownAnswer(id: 42, .accepted(from: "A", to: "C", epoch: 9)),
            .stepDownAnswer(id: 43, .refused(StepDownRefusal(.busy, "a handover is already under way"))),
            .handover(epoch: 9, to: "C", within: .milliseconds(9_500)),
        ]
        for m in frames {
            let bytes = WireFormat.encode(m)
            #expect(try WireFormat.decode(bytes) == .message(m, consumed: bytes.count))
            #expect(try WireFormat.decode(bytes, speaking: 2) == .unsupportedVersion(3, consumed: bytes.count))
        }
        let long = String(repeating: "é", count: 200)
        let cut = WireFormat.encode(.stepDownAnswer(id: 1, .refused(StepDownRefusal(.noMaster, long))))
        guard case .message(.stepDownAnswer(_, .refused(let r)), _) = try WireFormat.decode(cut) else {
            Issue.record("a long refusal does not decode")
            return
        }
        #expect(r.message.utf8.count <= WireFormat.maximumRefusalText && long.hasPrefix(r.message))
        var badCode = WireFormat.encode(.stepDownAnswer(id: 1, .refused(StepDownRefusal(.busy, "x"))))
        badCode[WireFormat.headerSize + 8] = 99
        #expect(throws: WireError.self) { try WireFormat.decode(badCode) }
        var longTimeout = WireFormat.encode(.stepDown(StepDownRequest(id: 1)))
        for k in 0..<4 { longTimeout[longTimeout.count - 4 + k] = 0xFF }
        #expect(throws: WireError.self) { try WireFormat.decode(longTimeout) }
    }
}
