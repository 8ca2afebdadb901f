import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif
import QuorumControl
import QuorumSecurity
@testable import QuorumCore
import QuorumSystemd
import Testing
@testable import QuorumNode

private let b = NodeIdentity(name: "B", instance: 0xb, address: "192.0.2.2", port: 6170, birth: 1_000)

private func status(role: Role = .slave, master: String? = "A", quorate: Bool = true, connected: Int = 2, size: Int = 3, lost: Int = 0) -> QuorumInstance.Status {
    QuorumInstance.Status(
        identity: b, cluster: "quorum", role: role, master: master, masterIdentity: nil, quorate: quorate, epoch: 4,
        clusterSize: size, majority: size / 2 + 1, connected: connected, lost: lost, metric: .age,
        isMember: true, membership: .bootstrap)
}

@Suite("Notices: what the operator reads")
struct NoticesTests {
    @Test("STATUS= is one line: role, master and epoch, members up, lost, a missing quorum, standby and a failing check")
    func statusLine() {
        #expect(Notices.statusLine(status()) == "slave; master A (epoch 4); 3/3 members up, 0 lost")
        #expect(Notices.statusLine(status(role: .noQuorum, master: nil, quorate: false, connected: 0, lost: 2))
            == "no-quorum; master none (epoch 4); 1/3 members up, 2 lost; no quorum")
        // What keeps the node from being master shows in `systemctl status` too.
        var standby = status()
        standby.eligibility.standby = true
        standby.eligibility.health = .failing
        #expect(Notices.statusLine(standby) == "slave; master A (epoch 4); 3/3 members up, 0 lost; standby; check failing")
    }

    @Test("dropped input of one kind is logged at most once every 10 seconds")
    func dropsAreRateLimited() {
        var counter = DropCounter()
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let t0 = Instant(nanoseconds: 0)
        let first = counter.note("frame", error: "x", logger: logger, now: t0)
        let again = counter.note("frame", error: "x", logger: logger, now: t0 + .seconds(9))
        let other = counter.note("datagram", error: "x", logger: logger, now: t0 + .seconds(9))
        let later = counter.note("frame", error: "x", logger: logger, now: t0 + .seconds(10))
        #expect(first)
        #expect(!again)
        #expect(other, "another kind has its own budget")
        #expect(later)
    }

    @Test("every line carries the node and cluster, and the role and master once the core runs")
    func metadata() {
        let notices = Notices(name: "B", cluster: "quorum", logger: Logger(label: "test"), notifier: SystemdNotifier(), logOutput: .standardError)
        #expect(notices.metadata() == ["quorum.node": "B", "quorum.cluster": "quorum"])
        notices.snapshot = { (.slave, MasterClaim(name: "A", instance: 1, epoch: 4)) }
        let m = notices.metadata()
        #expect(m["quorum.role"] == "slave" && m["quorum.master"] == "A" && m["quorum.epoch"] == "4")
    }
}

@Suite("Control adapter: answers from snapshots")
struct ControlAdapterTests {
    @Test("a status snapshot becomes the report with the JSON's keys")
    func statusReport() {
        let report = ControlAdapter.report(status(), uptime: .seconds(90))
        #expect(report.name == "B" && report.role == "slave" && report.master == "A" && report.epoch == 4)
        #expect(report.clusterSize == 3 && report.majority == 2 && report.metric == "age" && report.uptimeSeconds == 90)
        #expect(report.instance == "b" && report.port == 6170)
    }

    @Test("the core's peer states are the JSON's peer states")
    func peerStates() {
        for state in [QuorumInstance.PeerState.connected, .lost, .dispatched] {
            let peer = QuorumInstance.PeerStatus(identity: b, state: state, isMember: true, silence: .milliseconds(250))
            let report = ControlAdapter.report(peer)
            #expect(report.state.rawValue == state.rawValue)
            #expect(report.lastHeardMillisecondsAgo == 250)
        }
    }

    @Test("forget: forgotten is accepted; unknown and still connected are refused with a reason")
    func forgetAnswers() {
        #expect(ControlAdapter.response(forgetting: "C", .forgotten).isOK)
        #expect(ControlAdapter.response(forgetting: "C", .unknown) == .failure("no node named C is known"))
        #expect(!ControlAdapter.response(forgetting: "C", .stillConnected).isOK)
    }
}

/// Records what the transport hands on.
final class RecordingDelegate: TransportDelegate {
    var events: [Event] = []
    var linksUp: [NodeIdentity] = []
    var hello: Message?
    var versions: Message?
    var isEnding: Bool { false }
    func feed(_ event: Event) -> [Directive] { events.append(event); return [] }
    func linkUp(_ link: PeerLink, _ peer: NodeIdentity) { linksUp.append(peer) }
}

@Suite("Transport: bytes in, events out")
struct TransportTests {
    func transport(cluster: String = "quorum", loop: EmbeddedEventLoop = EmbeddedEventLoop()) -> (Transport, RecordingDelegate) {
        var settings = NodeSettings(name: "A", controlSocket: "/tmp/unused.sock", stateDirectory: "/tmp/unused")
        settings.cluster = cluster
        let notices = Notices(name: "A", cluster: cluster, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                              notifier: SystemdNotifier(), logOutput: .standardError)
        let t = Transport(loop: loop, settings: settings, keyring: nil, notices: notices)
        let d = RecordingDelegate()
        t.delegate = d
        return (t, d)
    }

    @Test("a discovery datagram of this cluster reaches the core as an announce")
    func announceIn() {
        let (t, d) = transport()
        let announce = Announce(cluster: "quorum", identity: b)
        t.received(datagram: DatagramSealing.seal(.announce(announce), keyring: nil, cluster: "quorum"))
        #expect(d.events == [.datagram(announce)])
    }

    @Test("garbage on the discovery port is dropped, never handed on")
    func garbageDropped() {
        let (t, d) = transport()
        t.received(datagram: [0x51, 0x4D, 1, 0xEE, 0, 0, 0, 0, 0, 0])
        t.received(datagram: Array("hello".utf8))
        #expect(d.events.isEmpty)
    }
}

@Suite("Peer link: the hello handshake")
struct PeerLinkTests {
    static let a = NodeIdentity(name: "A", instance: 0xa, address: "192.0.2.1", port: 6170, birth: 500)

    /// A link on an embedded channel, its transport's node being A.
    /// The transport is returned to be kept alive: the link holds it `unowned`.
    func link() throws -> (EmbeddedChannel, RecordingDelegate, Transport) {
        let loop = EmbeddedEventLoop()
        let (t, d) = TransportTests().transport(loop: loop)
        d.hello = .hello(Hello(cluster: "quorum", identity: Self.a))
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameSplitter()))
        try channel.pipeline.syncOperations.addHandler(PeerLink(transport: t, expected: nil))
        return (channel, d, t)
    }

    @Test("each side sends its hello first; the peer's hello brings the link up, named by the handshake")
    func handshake() throws {
        let (channel, d, t) = try link()
        defer { withExtendedLifetime(t) {} }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let sent = try #require(try channel.readOutbound(as: ByteBuffer.self))
        guard case .message(.hello(let own), _) = try WireFormat.decode(Array(sent.readableBytesView)) else {
            Issue.record("the first frame out is a hello")
            return
        }
        #expect(own.identity == Self.a)
        try channel.writeInbound(ByteBuffer(bytes: WireFormat.encode(.hello(Hello(cluster: "quorum", identity: b)))))
        #expect(d.linksUp == [b])
    }

    @Test("a hello of another cluster closes the link; the core never hears of it")
    func otherCluster() throws {
        let (channel, d, t) = try link()
        defer { withExtendedLifetime(t) {} }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(bytes: WireFormat.encode(.hello(Hello(cluster: "other", identity: b)))))
        #expect(d.linksUp.isEmpty && d.events.isEmpty)
        #expect(!channel.isActive)
    }

    @Test("anything but a hello first closes the link")
    func helloFirst() throws {
        let (channel, d, t) = try link()
        defer { withExtendedLifetime(t) {} }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(bytes: WireFormat.encode(.bye)))
        #expect(d.linksUp.isEmpty)
        #expect(!channel.isActive)
    }
}

@Suite("Terminal: q + Enter")
struct TerminalLineTests {
    @Test("a line is complete at its newline and trimmed of blanks")
    func lines() {
        var line = TerminalLine()
        #expect(Array(" q \r\n".utf8).compactMap { line.append($0) } == ["q"])
        #expect(Array("quit\n".utf8).compactMap { line.append($0) } == ["quit"])
    }
}

@Suite("Addresses: what a node advertises and how it dials")
struct AddressTests {
    static let devices = (try? System.enumerateDevices()) ?? []

    @Test("a specific bind address is advertised as it is; 127.255.255.255 advertises loopback")
    func chosen() {
        #expect(AdvertisedAddress.choose(bind: "fd00::7", broadcast: "ff02::114", devices: Self.devices) == "fd00::7")
        #expect(AdvertisedAddress.choose(bind: "0.0.0.0", broadcast: "127.255.255.255", devices: Self.devices) == "127.0.0.1")
    }

    @Test("link-local addresses: recognised, and dialled through this node's interface")
    func linkLocal() throws {
        #expect(AdvertisedAddress.isLinkLocal("fe80::1%eth0"))
        #expect(!AdvertisedAddress.isLinkLocal("fd00::1"))
        let address = try AdvertisedAddress.socketAddress("fe80::1%peer-side-name", port: 6170, interface: "lo")
        #expect(address.port == 6170)
        guard case .v6(let v6) = address else {
            Issue.record("not IPv6: \(address)")
            return
        }
        #expect(v6.address.sin6_scope_id == if_nametoindex("lo"), "the zone is this node's interface")
        #expect(throws: (any Error).self) { try AdvertisedAddress.socketAddress("not-an-address", port: 1, interface: nil) }
    }
}
