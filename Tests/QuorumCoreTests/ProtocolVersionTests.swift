import QuorumCore
import Testing

/// What a node knows of the protocol versions its members speak, from the frames its links
/// carried: the version every member speaks gates features that change who may be master.
@Suite("Protocol versions in the core")
struct ProtocolVersionTests {
    static func identity(_ name: String, port: UInt16) -> NodeIdentity {
        NodeIdentity(name: name, instance: UInt64(port), address: "127.0.0.1", port: port, birth: 1_000 + Int64(port))
    }

    @Test("the cluster speaks the lowest version of its members: one that sent no versions frame, or was never linked, counts as 1; the link-up carries what the peer said")
    func clusterVersion() {
        let a = Self.identity("A", port: 1), b = Self.identity("B", port: 2), c = Self.identity("C", port: 3)
        let list = MembershipList(epoch: 5, version: 1, members: [a, b, c], cluster: 7)
        var node = QuorumInstance(configuration: CoreConfiguration(cluster: "test"), identity: a,
                                  restored: PersistentState(highestEpoch: 5, membership: list), now: .zero, seed: 1)
        var now = Instant.zero
        _ = node.handle(.tick, now: now)
        var s = node.status(now: now)
        #expect(s.protocolVersion == WireFormat.version)
        #expect(s.clusterProtocolVersion == 1 && s.protocolBehind == ["B", "C"], "no member heard yet")

        now = now + .milliseconds(5)
        _ = node.handle(.linkUp(b, speaks: ProtocolRange(lowest: 1, highest: WireFormat.version)), now: now)
        _ = node.handle(.linkUp(c), now: now)
        s = node.status(now: now)
        #expect(s.clusterProtocolVersion == 1 && s.protocolBehind == ["C"], "C sent no versions frame: an older build")
        #expect(node.peerStatuses(now: now).map(\.protocolVersion) == [WireFormat.version, 1])

        // A versions frame after the hello (an older shell's order) still counts.
        _ = node.handle(.message(.versions(ProtocolRange(lowest: 1, highest: 9)), from: "C"), now: now)
        s = node.status(now: now)
        #expect(s.clusterProtocolVersion == WireFormat.version && s.protocolBehind.isEmpty, "a newer build speaks this node's highest with it")

        // C comes back as another process of an older build: its new link speaks 1 again.
        var c2 = c
        c2.instance = 99
        now = now + .milliseconds(5)
        _ = node.handle(.linkDown(name: "C", instance: c.instance, .closed), now: now)
        _ = node.handle(.linkUp(c2), now: now)
        s = node.status(now: now)
        #expect(s.clusterProtocolVersion == 1 && s.protocolBehind == ["C"])
    }

    @Test("a node that stands in for an older build speaks version 1 with everyone")
    func olderBuild() {
        let a = Self.identity("A", port: 1), b = Self.identity("B", port: 2)
        var configuration = CoreConfiguration(cluster: "test")
        configuration.protocolVersion = 1
        var node = QuorumInstance(configuration: configuration, identity: a, restored: nil, now: .zero, seed: 1)
        _ = node.handle(.linkUp(b), now: .zero)
        _ = node.handle(.message(.versions(ProtocolRange(lowest: 1, highest: 2)), from: "B"), now: .zero)
        #expect(node.status(now: .zero).protocolVersion == 1)
        #expect(node.peerStatuses(now: .zero).first?.protocolVersion == 1)
        #expect(node.status(now: .zero).protocolBehind.isEmpty)
    }
}
