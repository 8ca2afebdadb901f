import Logging
import NIOCore
import NIOPosix
import QuorumControl
import QuorumCore
import QuorumSecurity
import QuorumSystemd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The shell around one `QuorumInstance`: it owns the sockets and the timer, feeds the core
/// every event with the current monotonic instant, and carries out the core's directives in
/// order (persist before send, hooks one at a time, …).
///
/// Concurrency: everything here runs on one event loop, which also runs every channel of
/// the node (discovery, peer links). Other code (the control socket, hook completions)
/// reaches the driver only through `loop.execute`/`submit`. That single-threaded confinement
/// is what `@unchecked Sendable` stands for.
public final class NodeDriver: @unchecked Sendable {
    public let loop: EventLoop
    let settings: NodeSettings
    let logger: Logger
    let notifier: SystemdNotifier
    let store: StateStore
    public var hooks: HookRunner?
    /// The cluster key; nil: traffic is neither encrypted nor authenticated.
    public let keyring: ClusterKeyring?
    /// Frames and datagrams dropped because they did not open with the cluster key.
    private(set) var rejectedFrames = 0

    private var core: QuorumInstance?
    public private(set) var identity: NodeIdentity?
    private let startedAt = NIODeadline.now()
    /// The wall-clock time of this start, taken before any socket is bound, so that of two
    /// nodes started one after the other the first is the older.
    private let birth = NodeDriver.wallClockMilliseconds()
    private var server: Channel?
    private var discovery: Channel?
    private var stdinChannel: Channel?
    private var broadcastTarget: SocketAddress?
    /// Established links, by peer name: at most one per peer.
    private var links: [String: PeerLink] = [:]
    /// Links still exchanging `Hello`s.
    private var handshaking: Set<ObjectIdentifier> = []
    /// Outbound connection attempts in flight: peer name → expected instance.
    private var attempts: [String: UInt64] = [:]
    private var timer: Scheduled<Void>?
    private var timerDeadline: Instant?
    private var inbox: [Event] = []
    private var processing = false
    private var statusLine = ""
    private var exitCode: Int32?
    private var exitPromise: EventLoopPromise<Int32>
    private var watchdog: RepeatedTask?
    private var dropped = DropCounter()

    static let maximumHandshakes = 64
    static let masterChangeMessageID = "8c1b7e4a3f2d4a6e9b5c0d1e2f3a4b5c"

    public init(settings: NodeSettings, loop: EventLoop, logger: Logger, keyring: ClusterKeyring? = nil, notifier: SystemdNotifier = SystemdNotifier()) {
        self.settings = settings
        self.keyring = keyring
        self.loop = loop
        self.logger = logger
        self.notifier = notifier
        self.store = StateStore(directory: settings.stateDirectory)
        self.exitPromise = loop.makePromise(of: Int32.self)
    }

    /// Completes with the process exit status once the node has left (0) or dispatched on
    /// quorum loss (3), its goodbyes are sent and its hooks have run.
    public var exitFuture: EventLoopFuture<Int32> { exitPromise.futureResult }

    // MARK: - Start

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Prepares the state directory and loads the saved state. Fails on a configuration problem.
    public func loadState() throws(StartError) -> PersistentState? {
        do {
            try store.prepare()
            return try store.load()
        } catch {
            throw StartError(description: error.description)
        }
    }

    /// Binds the peer port (another free port if it is taken) and the discovery port, then
    /// starts the core. Returns once every socket is bound.
    public func start(restored: PersistentState?) async throws {
        let server = try await bindServer()
        let discovery = try await bindDiscovery()
        try await loop.submit {
            self.server = server
            self.discovery = discovery
            self.watchDiscovery(discovery)
            let port = UInt16(server.localAddress?.port ?? Int(self.settings.port))
            let devices = (try? System.enumerateDevices()) ?? []
            let address = AdvertisedAddress.choose(bind: self.settings.address, broadcast: self.settings.broadcastAddress, devices: devices)
            let birth = self.birth
            let identity = NodeIdentity(name: self.settings.name, instance: UInt64.random(in: 1...UInt64.max), address: address, port: port, birth: birth)
            self.identity = identity
            self.broadcastTarget = try SocketAddress(ipAddress: self.settings.broadcastAddress, port: Int(self.settings.broadcastPort))
            self.core = QuorumInstance(configuration: self.settings.coreConfiguration, identity: identity, restored: restored, now: self.now(), seed: UInt64.random(in: 0...UInt64.max))
            self.logger.info("\(identity.name) listens on \(self.settings.address):\(port), advertises \(address):\(port), discovery on port \(self.settings.broadcastPort) via \(self.settings.broadcastAddress)", metadata: self.metadata())
            if let interval = self.notifier.watchdogInterval {
                self.watchdog = self.loop.scheduleRepeatedTask(initialDelay: .zero, delay: .nanoseconds(interval.nanosecondsClamped)) { _ in
                    self.notifier.watchdog()
                }
            }
            self.feed(.tick)
            self.publishStatus()
        }.get()
    }

    private func bindServer() async throws -> Channel {
        let bootstrap = ServerBootstrap(group: loop)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in self.setUpLink(channel, expected: nil) }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(Self.userTimeoutOption, value: linkTimeoutMilliseconds)
        do {
            return try await bootstrap.bind(host: settings.address, port: Int(settings.port)).get()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            let channel = try await bootstrap.bind(host: settings.address, port: 0).get()
            logger.notice("port \(settings.port) is in use; \(settings.name) listens on port \(channel.localAddress?.port ?? 0) instead", metadata: metadata())
            return channel
        }
    }

    private func bindDiscovery() async throws -> Channel {
        try await discoveryBootstrap().get()
    }

    /// NIO closes a datagram channel on most send errors (EPERM from a firewall rule,
    /// ENETUNREACH while a cable is out …). Discovery must outlive those: bind it again.
    private func watchDiscovery(_ channel: Channel) {
        channel.closeFuture.whenComplete { _ in
            self.loop.execute {
                guard self.exitCode == nil, self.discovery === channel else { return }
                self.discovery = nil
                self.logger.warning("the discovery socket was closed by a send error; binding it again", metadata: self.metadata())
                self.rebindDiscovery(after: .milliseconds(50))
            }
        }
    }

    private func rebindDiscovery(after delay: TimeAmount) {
        loop.scheduleTask(in: delay) {
            guard self.exitCode == nil else { return }
            self.discoveryBootstrap().whenComplete { result in
                switch result {
                case .success(let channel):
                    self.discovery = channel
                    self.watchDiscovery(channel)
                case .failure(let error):
                    self.dropped.note("discovery", error: "cannot bind the discovery port again: \(error)", logger: self.logger)
                    self.rebindDiscovery(after: min(delay * 2, .seconds(2)))
                }
            }
        }
    }

    private func discoveryBootstrap() -> EventLoopFuture<Channel> {
        let any = settings.broadcastAddress.contains(":") ? "::" : "0.0.0.0"
        return DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            .channelOption(.socketOption(.so_broadcast), value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: WireFormat.maximumDatagram + 1))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DiscoveryHandler(driver: self))
                }
            }
            .bind(host: any, port: Int(settings.broadcastPort))
    }

    /// Reads `q` + Enter from an interactive terminal: a graceful dispatch.
    public func watchTerminal() {
        guard isatty(0) == 1 else { return }
        let fd = dup(0)
        guard fd >= 0 else { return }
        _ = NIOPipeBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TerminalHandler(driver: self))
                }
            }
            .takingOwnershipOfDescriptor(input: fd)
            .map { self.stdinChannel = $0 }
    }

    // MARK: - Events in

    /// Feeds one event; events that arrive while one is being handled wait their turn, so
    /// the directives of one event are always carried out before the next event is seen.
    func feed(_ event: Event) {
        loop.preconditionInEventLoop()
        inbox.append(event)
        guard !processing else { return }
        processing = true
        defer { processing = false }
        var changed = false
        while !inbox.isEmpty {
            let next = inbox.removeFirst()
            guard var node = core, exitCode == nil else { continue }
            let directives = node.handle(next, now: now())
            core = node
            // Roles, masters and members change only with a notice; heartbeats change nothing.
            changed = changed || directives.contains { if case .notice = $0 { true } else { false } }
            execute(directives)
        }
        if changed { publishStatus() }
    }

    func now() -> Instant { Instant(nanoseconds: Int64(NIODeadline.now().uptimeNanoseconds)) }

    static func wallClockMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    // MARK: - Directives out

    private func execute(_ directives: [Directive]) {
        for directive in directives {
            switch directive {
            case .broadcast(let announce):
                guard let discovery, let target = broadcastTarget else { continue }
                let buffer = ByteBuffer(bytes: DatagramSealing.seal(.announce(announce), keyring: keyring, cluster: settings.cluster))
                discovery.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: buffer)).whenFailure { error in
                    self.dropped.note("announce", error: "\(error)", logger: self.logger)
                }
            case .connect(let peer):
                connect(to: peer)
            case .send(let message, let to):
                links[to]?.send(message)
            case .persist(let state):
                do {
                    try store.save(state)
                } catch {
                    // Without a durable vote this node could vote twice: stop at once, like a crash.
                    logger.critical("cannot persist the vote: \(error)", metadata: metadata())
                    exit(1)
                }
            case .runHook(let run):
                runHook(run)
            case .notice(let notice):
                log(notice)
            case .wakeUp(let at):
                // Most events ask for the same instant (the next heartbeat): keep that timer.
                if at == timerDeadline, timer != nil { continue }
                timer?.cancel()
                timerDeadline = at
                let delay = max(0, at.nanoseconds - now().nanoseconds)
                timer = loop.scheduleTask(in: .nanoseconds(delay)) {
                    self.timer = nil
                    self.feed(.tick)
                }
            case .exit(let code):
                finish(code: code)
            case .forgetAnswered:
                break  // answered by forget(_:)
            case .refuseLink:
                break  // TODO(issue 11): send nameTaken on that link and close it
            }
        }
    }

    private func runHook(_ run: QuorumCore.HookRun) {
        let path = run.role == .master ? settings.masterHook : settings.slaveHook
        guard let path, let hooks else {
            // No hook configured: it has "finished" at once (the core waits for it on a handover).
            loop.execute { self.feed(.hookFinished(run.id)) }
            return
        }
        hooks.submit(HookRun(
            id: run.id, path: path, role: run.role.rawValue, previousRole: run.previousRole.rawValue,
            name: settings.name, cluster: settings.cluster, master: run.master, epoch: run.epoch))
    }

    /// Called by the hook runner (any thread) when a hook finished or was killed.
    public func hookCompleted(_ id: UInt64) {
        loop.execute { self.feed(.hookFinished(id)) }
    }

    private func finish(code: Int32) {
        guard exitCode == nil else { return }
        exitCode = code
        notifier.stopping()
        timer?.cancel()
        watchdog?.cancel()
        logger.info("\(settings.name) leaves the cluster (exit status \(code))", metadata: metadata())
        // Let the goodbyes reach the peers, close everything, then wait for the hooks.
        let flushes = links.values.map { $0.closeAfterFlush() }
        EventLoopFuture.andAllComplete(flushes, on: loop).whenComplete { _ in
            self.server?.close(promise: nil)
            self.discovery?.close(promise: nil)
            self.stdinChannel?.close(promise: nil)
            let hooks = self.hooks
            let promise = self.exitPromise
            if let hooks {
                promise.completeWithTask {
                    await hooks.drain()
                    return code
                }
            } else {
                promise.succeed(code)
            }
        }
    }

    // MARK: - Peer links

    /// `TCP_USER_TIMEOUT`: a link whose data stays unacknowledged this long is aborted by the
    /// kernel (see `Timing.linkTimeout`). Level `IPPROTO_TCP`, not `SOL_SOCKET`.
    static let userTimeoutOption = ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: TCP_USER_TIMEOUT))

    var linkTimeoutMilliseconds: SocketOptionValue {
        SocketOptionValue(clamping: settings.coreConfiguration.timing.linkTimeout.nanosecondsClamped / 1_000_000)
    }

    func setUpLink(_ channel: Channel, expected: NodeIdentity?) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            let link = PeerLink(driver: self, expected: expected)
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameSplitter()))
            try channel.pipeline.syncOperations.addHandler(link)
        }
    }

    private func connect(to peer: NodeIdentity) {
        guard exitCode == nil, peer.name != settings.name else { return }
        if let existing = links[peer.name], existing.identity?.instance == peer.instance { return }
        if attempts[peer.name] != nil { return }
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: peer.address, port: Int(peer.port))
        } catch {
            dropped.note("address", error: "\(peer.name) advertises an unusable address \(peer.address)", logger: logger)
            loop.execute { self.feed(.linkDown(name: peer.name, instance: peer.instance, .unreachable)) }
            return
        }
        attempts[peer.name] = peer.instance
        ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(settings.coreConfiguration.timing.connectTimeout.nanosecondsClamped))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(Self.userTimeoutOption, value: linkTimeoutMilliseconds)
            .channelInitializer { channel in self.setUpLink(channel, expected: peer) }
            .connect(to: address)
            .whenFailure { error in
                self.attempts[peer.name] = nil
                let refused = (error as? IOError)?.errnoCode == ECONNREFUSED
                self.feed(.linkDown(name: peer.name, instance: peer.instance, refused ? .refused : .unreachable))
            }
    }

    /// A link's handshake finished. Returns `false` when the link must be closed.
    func linkEstablished(_ link: PeerLink, hello: Hello, outbound: Bool) -> Bool {
        handshaking.remove(ObjectIdentifier(link))
        if let expected = link.expected, attempts[expected.name] == expected.instance { attempts[expected.name] = nil }
        guard hello.cluster == settings.cluster else {
            dropped.note("cluster", error: "refused \(hello.identity.name): it belongs to cluster \(hello.cluster), not \(settings.cluster)", logger: logger)
            return false
        }
        let peer = hello.identity
        if peer.name == settings.name {
            if peer.instance != identity?.instance {
                dropped.note("duplicate", error: "another node calls itself \(peer.name) (\(peer.address):\(peer.port)); ignoring it", logger: logger)
            }
            return false
        }
        if let expected = link.expected, expected.name != peer.name {
            // Someone else answered at that address: the node we looked for is not there.
            loop.execute { self.feed(.linkDown(name: expected.name, instance: expected.instance, .unreachable)) }
        }
        if let existing = links[peer.name], existing !== link {
            if existing.identity?.instance == peer.instance {
                // Both sides connected at once: keep the link opened by the smaller name, on both sides.
                let opener = outbound ? settings.name : peer.name
                let keepNew = opener == min(settings.name, peer.name)
                if !keepNew { return false }
                links[peer.name] = link
                existing.closeQuietly()
                return true
            }
            existing.closeQuietly()
        } else if links.count >= settings.coreConfiguration.maximumPeers {
            dropped.note("table", error: "peer table full; refused \(peer.name)", logger: logger)
            return false
        }
        links[peer.name] = link
        feed(.linkUp(peer))
        return true
    }

    func linkHandshakeStarted(_ link: PeerLink) -> Bool {
        guard handshaking.count < Self.maximumHandshakes, exitCode == nil else { return false }
        handshaking.insert(ObjectIdentifier(link))
        return true
    }

    func linkClosed(_ link: PeerLink) {
        handshaking.remove(ObjectIdentifier(link))
        if let peer = link.identity, links[peer.name] === link {
            links[peer.name] = nil
            feed(.linkDown(name: peer.name, instance: peer.instance, .closed))
        } else if link.identity == nil, let expected = link.expected, attempts[expected.name] == expected.instance {
            // Connected, but the handshake never completed.
            attempts[expected.name] = nil
            feed(.linkDown(name: expected.name, instance: expected.instance, .unreachable))
        }
    }

    func received(_ message: Message, on link: PeerLink) {
        guard let peer = link.identity, links[peer.name] === link else { return }
        feed(.message(message, from: peer.name))
    }

    func hello() -> Message? {
        identity.map { .hello(Hello(cluster: settings.cluster, identity: $0)) }
    }

    /// The kernel aborted a link whose frames went unacknowledged for `Timing.linkTimeout`
    /// (a partition, or a peer host gone): the core redials it as for any closed link.
    func noteLinkTimedOut(_ peer: String) {
        var m = metadata()
        m["quorum.peer"] = "\(peer)"
        logger.info("the link to \(peer) carried no acknowledgement for \(settings.coreConfiguration.timing.linkTimeout); closed it, dialling again", metadata: m)
    }

    func noteBadInput(_ what: String, error: String) {
        dropped.note(what, error: error, logger: logger)
    }

    /// A frame or datagram that failed to open or decode: counted, and logged at most once
    /// every 10 seconds.
    func noteRejectedFrame(from peer: String?, error: String) {
        rejectedFrames += 1
        dropped.note("frame", error: "\(peer.map { "from \($0): " } ?? "")\(error) (\(rejectedFrames) rejected so far)", logger: logger)
    }

    // MARK: - Discovery

    func received(datagram bytes: [UInt8]) {
        do {
            switch try DatagramSealing.open(bytes, keyring: keyring, cluster: settings.cluster) {
            case .announce(let announce)?:
                feed(.datagram(announce))
            case nil:
                dropped.note("datagram", error: "discovery datagram of a newer format version", logger: logger)
            case let other?:
                dropped.note("datagram", error: "unexpected \(other.kind) datagram", logger: logger)
            }
        } catch let error as Sealing.Failure {
            noteRejectedFrame(from: nil, error: "discovery datagram: \(error)")
        } catch {
            dropped.note("datagram", error: "\(error)", logger: logger)
        }
    }

    // MARK: - Control requests

    public func leave() -> EventLoopFuture<Int32> {
        loop.execute { self.feed(.leaveRequested) }
        return exitFuture
    }

    public func statusReport() -> EventLoopFuture<StatusReport?> {
        loop.submit {
            self.feed(.tick)
            guard let core = self.core else { return nil }
            return Self.report(core.status(now: self.now()), uptime: NIODeadline.now() - self.startedAt)
        }
    }

    public func peerReports() -> EventLoopFuture<[PeerReport]> {
        loop.submit {
            self.feed(.tick)
            guard let core = self.core else { return [] }
            return core.peerStatuses(now: self.now()).map { p in
                PeerReport(
                    name: p.identity.name, address: p.identity.address, port: Int(p.identity.port),
                    state: PeerState(rawValue: p.state.rawValue) ?? .lost, birth: p.identity.birth,
                    instance: String(p.identity.instance, radix: 16),
                    lastHeardMillisecondsAgo: p.silence.map { Int64($0.milliseconds) })
            }
        }
    }

    public func forget(_ peer: String) -> EventLoopFuture<ForgetOutcome> {
        loop.submit {
            guard var core = self.core, self.exitCode == nil else { return .unknown }
            let directives = core.handle(.forgetRequested(name: peer), now: self.now())
            self.core = core
            self.execute(directives)
            self.publishStatus()
            for case .forgetAnswered(_, let outcome) in directives { return outcome }
            return .unknown
        }
    }

    static func report(_ s: QuorumInstance.Status, uptime: TimeAmount) -> StatusReport {
        StatusReport(
            name: s.identity.name, cluster: s.cluster, role: s.role.rawValue, master: s.master, quorate: s.quorate,
            epoch: s.epoch, clusterSize: s.clusterSize, majority: s.majority, connected: s.connected, lost: s.lost,
            metric: s.metric.rawValue,
            masterAddress: s.masterIdentity.map { "\($0.address):\($0.port)" }, address: s.identity.address,
            port: Int(s.identity.port), birth: s.identity.birth, instance: String(s.identity.instance, radix: 16),
            uptimeSeconds: uptime.nanoseconds / 1_000_000_000)
    }

    // MARK: - Logs and status

    private func metadata() -> Logger.Metadata {
        var m: Logger.Metadata = ["quorum.node": "\(settings.name)", "quorum.cluster": "\(settings.cluster)"]
        if let core {
            let n = now()
            m["quorum.role"] = "\(core.role.rawValue)"
            if let master = core.currentMaster(now: n) {
                m["quorum.master"] = "\(master.name)"
                m["quorum.epoch"] = "\(master.epoch)"
            }
        }
        return m
    }

    private func log(_ notice: Notice) {
        var m = metadata()
        let line = notice.description(node: settings.name)
        switch notice {
        case .masterChanged(let master, let epoch):
            m["MESSAGE_ID"] = "\(Self.masterChangeMessageID)"
            m["quorum.master"] = "\(master)"
            m["quorum.epoch"] = "\(epoch)"
            logger.notice("\(line)", metadata: m)
        case .peerConnected(let p, _), .peerReentered(let p), .peerLost(let p, _), .peerDispatched(let p), .peerForgotten(let p):
            m["quorum.peer"] = "\(p)"
            logger.log(level: notice.isDebug ? .debug : .info, "\(line)", metadata: m)
        case .roleChanged(_, let to, let epoch, let cause):
            m["quorum.role"] = "\(to.rawValue)"
            m["quorum.epoch"] = "\(epoch)"
            m["quorum.cause"] = "\(cause.rawValue)"
            logger.info("\(line)", metadata: m)
        case .duplicateName, .peerRefused:
            logger.warning("\(line)", metadata: m)
        default:
            logger.log(level: notice.isDebug ? .debug : .info, "\(line)", metadata: m)
        }
    }

    private func publishStatus() {
        guard let core else { return }
        let s = core.status(now: now())
        let line = "\(s.role.rawValue); master \(s.master ?? "none") (epoch \(s.epoch)); \(s.connected + 1)/\(s.clusterSize) members up, \(s.lost) lost\(s.quorate ? "" : "; no quorum")"
        guard line != statusLine else { return }
        statusLine = line
        notifier.status(line)
    }
}

/// Counts dropped input and logs at most one line per kind every 10 seconds.
struct DropCounter {
    private var last: [String: (at: NIODeadline, suppressed: Int)] = [:]

    mutating func note(_ kind: String, error: String, logger: Logger) {
        let now = NIODeadline.now()
        if let entry = last[kind], now - entry.at < .seconds(10) {
            last[kind]?.suppressed += 1
            return
        }
        let suppressed = last[kind]?.suppressed ?? 0
        last[kind] = (now, 0)
        logger.info("dropped \(kind): \(error)\(suppressed > 0 ? " (and \(suppressed) more in the last 10 s)" : "")")
    }
}
