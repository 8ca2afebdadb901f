import QuorumCore
import Testing

/// `status` says why there is no master, and says nothing when there is one.
@Suite("Why there is no master", .onOwnThread)
struct NoMasterReasonTests {
    func reason(_ net: ScriptedNet, _ i: Int) -> NoMasterReason? {
        net.core(i).status(now: net.local(i)).noMasterReason
    }

    @Test("a lone node is electing in its discovery window")
    func electingAtFirst() {
        var net = ScriptedNet()
        let a = net.start("A", birth: 1_000, port: 7001)
        net.run(for: .milliseconds(100))
        #expect(reason(net, a) == .electing)
        #expect(net.run(until: .seconds(2)) { $0.masters == [a] && reason($0, a) == nil })
    }

    @Test("expected nodes not seen, then a master (no reason), then no quorum after two of three crash")
    func reasonsFollowTheCluster() {
        var net = ScriptedNet()
        let expectThree: (inout CoreConfiguration) -> Void = { $0.expectedNodes = 3 }
        let a = net.start("A", birth: 1_000, port: 7001, configure: expectThree)
        let b = net.start("B", birth: 2_000, port: 7002, configure: expectThree)
        #expect(reason(net, a) == .expectedNodesNotSeen)
        net.run(for: .seconds(2))
        #expect(net.masters.isEmpty)
        #expect(reason(net, a) == .expectedNodesNotSeen && reason(net, b) == .expectedNodesNotSeen)

        let c = net.start("C", birth: 3_000, port: 7003, configure: expectThree)
        #expect(net.run(until: .seconds(3)) { $0.masters == [a] })
        #expect(net.run(until: .seconds(1)) { n in [a, b, c].allSatisfy { reason(n, $0) == nil } })

        net.kill(b)
        net.kill(c)
        #expect(net.run(until: .seconds(3)) { reason($0, a) == .noQuorum })
        #expect(net.core(a).status(now: net.local(a)).master == nil)
    }
}
