import NIOCore
import NIOPosix
import QuorumCore
import QuorumSecurity

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the transport hands on: the core adapter's side of it.
protocol TransportDelegate: AnyObject {
    /// This node's `Hello`, once it knows its identity.
    var hello: Message? { get }
    /// The `versions` frame a link sends before its hello (nil: none, protocol 1 only).
    var versions: Message? { get }
    /// The node is leaving or has stopped: no new links.
    var isEnding: Bool { get }
    /// An event for the core (a message on an installed link, an announce, a link down, `q`).
    @discardableResult func feed(_ event: Event) -> [Directive]
    /// A link completed its handshake: the core decides, in turn, whether it is admitted.
    func linkUp(_ link: PeerLink, _ peer: NodeIdentity)
}

/// The node's sockets: the peer listener and dialler, the links and their handshakes (one
/// installed link per peer name), the discovery socket, and the terminal. It moves bytes and
/// knows links; what they mean is the core's (through ``TransportDelegate``).
///
/// Concurrency: confined to the node's event loop, which also runs every channel it makes;
/// closures handed to NIO reach it through a `NIOLoopBound`. Not `Sendable`.
final class Transport {
    let loop: EventLoop
    let settings: NodeSettings
    /// The cluster key (nil: traffic is neither encrypted nor authenticated). Links opened
    /// from now on and every datagram use it; a reload may replace it with a rotation step,
    /// and open links keep the keys they started with.
    var keyring: ClusterKeyring?
    let notices: Notices
    weak var delegate: TransportDelegate?
    /// Told how its dials went (see ``SeedDialer``).
    weak var seeds: SeedDialer?

    private var server: Channel?
    /// The discovery socket and where announcements go (Transport+Discovery.swift).
    var discovery: Channel?
    private var terminal: Channel?
    var broadcastTarget: SocketAddress?
    /// Installed links, by peer name: at most one per peer.
    private var links: [String: PeerLink] = [:]
    /// Links still exchanging `Hello`s.
    private var handshaking: Set<ObjectIdentifier> = []
    /// Outbound connection attempts in flight: peer name → expected instance.
    private var attempts: [String: UInt64] = [:]
    private var closed = false
    /// The node is leaving (no new links, no new dials) or its sockets are closed.
    var stopped: Bool { closed || delegate?.isEnding != false }

    static let maximumHandshakes = 64

    init(loop: EventLoop, settings: NodeSettings, keyring: ClusterKeyring?, notices: Notices) {
        self.loop = loop
        self.settings = settings
        self.keyring = keyring
        self.notices = notices
    }

    // MARK: - Binding

    /// The peer port is taken and seeds are configured: other nodes dial this very port.
    struct FixedPortTaken: Error, CustomStringConvertible {
        var port: UInt16
        var description: String { "port \(port) is in use; with --peer the peer port must be fixed" }
    }

    /// Binds the peer port (another free port if it is taken, unless seeds are configured)
    /// and the discovery port (none with `--broadcast-address none`). Completes with the
    /// peer port once both are bound.
    func bind() -> EventLoopFuture<UInt16> {
        loop.preconditionInEventLoop()
        let me = NIOLoopBound(self, eventLoop: loop)
        let settings = self.settings
        let server = serverBootstrap(me).bind(host: settings.address, port: Int(settings.port))
            .flatMapError { error in
                guard (error as? IOError)?.errnoCode == EADDRINUSE else { return me.value.loop.makeFailedFuture(error) }
                if !settings.seeds.isEmpty { return me.value.loop.makeFailedFuture(FixedPortTaken(port: settings.port)) }
                return me.value.serverBootstrap(me).bind(host: settings.address, port: 0).map { channel in
                    me.value.notices.portTaken(settings.port, instead: channel.localAddress?.port ?? 0)
                    return channel
                }
            }
        return server.flatMap { server in
            guard settings.broadcastDiscovery else { return me.value.loop.makeSucceededFuture((server, Channel?.none)) }
            return me.value.discoveryBootstrap(me).map { (server, Optional($0)) }
        }.assumeIsolated().flatMapThrowing { server, discovery in
            self.server = server
            if let discovery {
                self.discovery = discovery
                self.watchDiscovery(discovery)
                self.broadcastTarget = try Self.discoveryTarget(settings)
            }
            return UInt16(server.localAddress?.port ?? Int(settings.port))
        }.nonisolated()
    }

    private func serverBootstrap(_ me: NIOLoopBound<Transport>) -> ServerBootstrap {
        ServerBootstrap(group: loop)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in me.value.setUpLink(channel, expected: nil) }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(Self.userTimeoutOption, value: linkTimeoutMilliseconds)
    }

    /// Reads `q` + Enter from an interactive terminal: a graceful dispatch.
    func watchTerminal() {
        guard isatty(0) == 1 else { return }
        let fd = dup(0)
        guard fd >= 0 else { return }
        let me = NIOLoopBound(self, eventLoop: loop)
        NIOPipeBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TerminalHandler(transport: me.value))
                }
            }
            .takingOwnershipOfDescriptor(input: fd)
            .assumeIsolated().whenSuccess { self.terminal = $0 }
    }

    // MARK: - Out

    func send(_ message: Message, to peer: String) {
        links[peer]?.send(message)
    }

    /// Whether a link to `peer` is installed.
    func isLinked(_ peer: String) -> Bool { links[peer] != nil }

    /// Dials an address of seed `seed`; the handshake says who answered (see ``SeedDialer``).
    func dial(seed: Int, to address: SocketAddress) {
        guard !stopped else { return }
        let me = NIOLoopBound(self, eventLoop: loop)
        ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(settings.coreConfiguration.timing.connectTimeout.nanosecondsClamped))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(Self.userTimeoutOption, value: linkTimeoutMilliseconds)
            .channelInitializer { channel in me.value.setUpLink(channel, expected: nil, seed: seed) }
            .connect(to: address)
            .assumeIsolated().whenFailure { error in
                let refused = (error as? IOError)?.errnoCode == ECONNREFUSED
                self.seeds?.failed(seed, refused: refused, error: refused ? "connection refused" : "\(error)")
            }
    }

    /// Dials a peer the core asked for, unless a link to that very process is up or being made.
    func connect(to peer: NodeIdentity, ownInstance: UInt64?) {
        // Another process with this node's own name is dialled too: the link settles which keeps it.
        guard !stopped, peer.instance != ownInstance else { return }
        if let existing = links[peer.name], existing.identity?.instance == peer.instance { return }
        if attempts[peer.name] != nil { return }
        let address: SocketAddress
        do {
            address = try AdvertisedAddress.socketAddress(peer.address, port: peer.port, interface: settings.discoveryInterface)
        } catch {
            notices.drop("address", error: "\(peer.name) advertises an unusable address \(peer.address)")
            loop.assumeIsolated().execute { self.delegate?.feed(.linkDown(name: peer.name, instance: peer.instance, .unreachable)) }
            return
        }
        attempts[peer.name] = peer.instance
        let me = NIOLoopBound(self, eventLoop: loop)
        ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(settings.coreConfiguration.timing.connectTimeout.nanosecondsClamped))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(Self.userTimeoutOption, value: linkTimeoutMilliseconds)
            .channelInitializer { channel in me.value.setUpLink(channel, expected: peer) }
            .connect(to: address)
            .assumeIsolated().whenFailure { error in
                self.attempts[peer.name] = nil
                let refused = (error as? IOError)?.errnoCode == ECONNREFUSED
                self.delegate?.feed(.linkDown(name: peer.name, instance: peer.instance, refused ? .refused : .unreachable))
            }
    }

    // MARK: - Admission (the core decides in between)

    /// Both sides connected at once to the same process: keep the link opened by the smaller
    /// name, on both sides. Returns `true` when that settled `link` (the core is not asked).
    func settleCrossedLinks(_ link: PeerLink, _ peer: NodeIdentity) -> Bool {
        guard let existing = links[peer.name], existing !== link, existing.identity?.instance == peer.instance else { return false }
        let opener = link.isOutbound ? settings.name : peer.name
        if opener == min(settings.name, peer.name) {
            links[peer.name] = link
            existing.closeQuietly()
        } else {
            link.closeQuietly()
        }
        return true
    }

    /// Installs a link the core admitted. A link of this name that is still open belonged to
    /// an older instance, which the core has just accepted as gone (a re-entry).
    func install(_ link: PeerLink, as peer: NodeIdentity) {
        // Never a link under this node's own name (the core refuses those; if it lets one
        // pass, it is closed all the same).
        guard peer.name != settings.name else {
            link.closeQuietly()
            return
        }
        if let existing = links[peer.name], existing !== link { existing.closeQuietly() }
        links[peer.name] = link
    }

    // MARK: - From the links

    func linkHandshakeStarted(_ link: PeerLink) -> Bool {
        guard handshaking.count < Self.maximumHandshakes, !stopped else { return false }
        handshaking.insert(ObjectIdentifier(link))
        return true
    }

    var hello: Message? { delegate?.hello }
    var versions: Message? { delegate?.versions }

    /// A link's handshake finished. Returns `false` when the link must be closed at once
    /// (another cluster, or this very process); otherwise the core decides, in turn.
    func linkEstablished(_ link: PeerLink, hello: Hello) -> Bool {
        handshaking.remove(ObjectIdentifier(link))
        if let expected = link.expected, attempts[expected.name] == expected.instance { attempts[expected.name] = nil }
        guard hello.cluster == settings.cluster else {
            notices.drop("cluster", error: "refused \(hello.identity.name): it belongs to cluster \(hello.cluster), not \(settings.cluster)")
            if let seed = link.seed { seeds?.failed(seed, refused: false, error: "\(hello.identity.name) belongs to cluster \(hello.cluster)") }
            return false
        }
        let peer = hello.identity
        // A link to this very process (its own announce answered, or a seed that names this
        // host); another process with this node's name goes to the core like any other,
        // which refuses it.
        if case .hello(let own)? = delegate?.hello, peer.name == settings.name, peer.instance == own.identity.instance {
            if let seed = link.seed { seeds?.reachedSelf(seed) }
            return false
        }
        if let seed = link.seed { seeds?.reached(seed, peer: peer.name) }
        if let expected = link.expected, expected.name != peer.name {
            // Someone else answered at that address: the node we looked for is not there.
            loop.assumeIsolated().execute { self.delegate?.feed(.linkDown(name: expected.name, instance: expected.instance, .unreachable)) }
        }
        delegate?.linkUp(link, peer)
        return true
    }

    func linkClosed(_ link: PeerLink) {
        handshaking.remove(ObjectIdentifier(link))
        if let peer = link.identity, links[peer.name] === link {
            links[peer.name] = nil
            delegate?.feed(.linkDown(name: peer.name, instance: peer.instance, .closed))
        } else if link.identity == nil, let expected = link.expected, attempts[expected.name] == expected.instance {
            // Connected, but the handshake never completed.
            attempts[expected.name] = nil
            delegate?.feed(.linkDown(name: expected.name, instance: expected.instance, .unreachable))
        } else if link.identity == nil, let seed = link.seed {
            seeds?.failed(seed, refused: false, error: "the link closed before its hello (another key, or not a quorum node)")
        }
    }

    func received(_ message: Message, on link: PeerLink) {
        guard let peer = link.identity else { return }
        if links[peer.name] === link {
            delegate?.feed(.message(message, from: peer.name))
        } else if case .nameTaken = message {
            // The answer on a link that was never installed: two processes with one name both
            // refuse the link between them, and each must read the other's refusal.
            delegate?.feed(.message(message, from: peer.name))
        }
    }

    func leaveRequested() { delegate?.feed(.leaveRequested) }

    // MARK: - Closing

    /// Like a crash: every link and socket closed now, no goodbye flushed.
    func closeNow() {
        for link in links.values { link.closeQuietly() }
        closeSockets()
    }

    /// Lets what was written to the links (the goodbyes) reach the peers, then closes every
    /// socket. Completes once the links are closed.
    func closeAfterFlush() -> EventLoopFuture<Void> {
        let flushes = links.values.map { $0.closeAfterFlush() }
        return EventLoopFuture.andAllComplete(flushes, on: loop).assumeIsolated().map { self.closeSockets() }.nonisolated()
    }

    private func closeSockets() {
        closed = true
        seeds?.stop()
        server?.close(promise: nil)
        discovery?.close(promise: nil)
        terminal?.close(promise: nil)
    }

    // MARK: - Links

    /// `TCP_USER_TIMEOUT`: a link whose data stays unacknowledged this long is aborted by the
    /// kernel (see `Timing.linkTimeout`). Level `IPPROTO_TCP`, not `SOL_SOCKET`.
    static let userTimeoutOption = ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: TCP_USER_TIMEOUT))

    private var linkTimeoutMilliseconds: SocketOptionValue {
        SocketOptionValue(clamping: settings.coreConfiguration.timing.linkTimeout.nanosecondsClamped / 1_000_000)
    }

    private func setUpLink(_ channel: Channel, expected: NodeIdentity?, seed: Int? = nil) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            let link = PeerLink(transport: self, expected: expected, seed: seed)
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameSplitter()))
            try channel.pipeline.syncOperations.addHandler(link)
        }
    }
}
