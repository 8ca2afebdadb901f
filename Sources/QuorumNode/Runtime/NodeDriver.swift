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
/// every event with the current instant of the node's clock (`BootClock`: `CLOCK_BOOTTIME`,
/// which counts a suspend), and carries out the core's directives in order (persist before
/// send, hooks one at a time through the core's `HookQueue`, …).
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
    /// Where the log lines go; under journald a fatal reason is an entry with fields, else
    /// quorumd prints it as its last line on standard error.
    let logOutput: LogOutput
    let store: StateStore
    public var hooks: HookRunner?
    /// The cluster key; nil: traffic is neither encrypted nor authenticated.
    public let keyring: ClusterKeyring?
    /// Frames and datagrams dropped because they did not open with the cluster key.
    private(set) var rejectedFrames = 0

    private var core: QuorumInstance?
    public private(set) var identity: NodeIdentity?
    private let startedAt = BootClock.now()
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
    private var inbox: [Input] = []
    private var processing = false
    /// The link whose `linkUp` the core is handling: a `refuseLink` of its identity is for it.
    private var admitting: (link: PeerLink, peer: NodeIdentity)?
    /// Role hooks: queued here, one at a time on `hooks`.
    private var hookDispatch: HookDispatch
    /// Called once the hook queue is empty and no hook runs (set while finishing).
    private var whenHooksIdle: (() -> Void)?
    private var statusLine = ""
    /// Set by `finish`: the node is leaving or has stopped; the core sees no more events.
    private var ending: Ending?
    /// Why the node must stop, for the operator (set by a notice just before `.exit`).
    private var exitMessage: String?
    private var endingPromise: EventLoopPromise<Ending>
    private var watchdog: RepeatedTask?
    private var dropped = DropCounter()

    static let maximumHandshakes = 64
    static let masterChangeMessageID = "8c1b7e4a3f2d4a6e9b5c0d1e2f3a4b5c"

    public init(
        settings: NodeSettings, loop: EventLoop, logger: Logger, keyring: ClusterKeyring? = nil,
        notifier: SystemdNotifier = SystemdNotifier(), logOutput: LogOutput = .standardError
    ) {
        self.logOutput = logOutput
        self.settings = settings
        self.keyring = keyring
        self.loop = loop
        self.logger = logger
        self.notifier = notifier
        self.store = StateStore(directory: settings.stateDirectory)
        self.endingPromise = loop.makePromise(of: Ending.self)
        self.hookDispatch = HookDispatch(masterHook: settings.masterHook, slaveHook: settings.slaveHook, name: settings.name, cluster: settings.cluster)
    }

    /// How the node ended.
    public struct Ending: Sendable, Equatable {
        /// The process exit status: 0 after a leave, 3 after a dispatch on quorum loss, 2 when
        /// another live node holds this node's name, 1 when the state could not be persisted.
        public var code: Int32
        /// One line for standard error, when the operator must be told why (status 2).
        public var message: String?
        /// Stopped like a crash (a failed persist): no goodbye was flushed and queued hooks were
        /// not run; the hook that runs must be killed, not waited for.
        public var abrupt: Bool
    }

    /// Completes once the node has left (0), dispatched on quorum loss (3), found its name
    /// taken (2) or failed to persist (1, abrupt); but for an abrupt stop, its goodbyes are sent
    /// and its hooks have run by then.
    public var ended: EventLoopFuture<Ending> { endingPromise.futureResult }

    /// The process exit status, when ``ended`` completes.
    public var exitFuture: EventLoopFuture<Int32> { ended.map(\.code) }

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
                guard self.ending == nil, self.discovery === channel else { return }
                self.discovery = nil
                self.logger.warning("the discovery socket was closed by a send error; binding it again", metadata: self.metadata())
                self.rebindDiscovery(after: .milliseconds(50))
            }
        }
    }

    private func rebindDiscovery(after delay: TimeAmount) {
        loop.scheduleTask(in: delay) {
            guard self.ending == nil else { return }
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

    /// What waits in the inbox: an event for the core, or a link whose handshake completed
    /// (the core decides whether it is admitted, see `admit`).
    private enum Input {
        case event(Event)
        case linkUp(PeerLink, NodeIdentity)
    }

    /// Feeds one event; events that arrive while one is being handled wait their turn, so
    /// the directives of one event are always carried out before the next event is seen.
    /// Returns the directives of this event when it was handled at once (nothing was being
    /// handled), else none.
    @discardableResult
    func feed(_ event: Event) -> [Directive] {
        enqueue(.event(event))
    }

    @discardableResult
    private func enqueue(_ input: Input) -> [Directive] {
        loop.preconditionInEventLoop()
        inbox.append(input)
        guard !processing else { return [] }
        processing = true
        defer { processing = false }
        var first: [Directive]?
        var changed = false
        repeat {
            while !inbox.isEmpty {
                let directives = handle(inbox.removeFirst())
                if first == nil { first = directives }
                // Roles, masters and members change only with a notice; heartbeats change nothing.
                changed = changed || directives.contains { if case .notice = $0 { true } else { false } }
            }
            // With every event handled, start the next hook if none runs; a skipped hook is
            // reported finished to the core, which may queue another: go round again.
            startNextHook()
        } while !inbox.isEmpty
        if changed { publishStatus() }
        if ending != nil, hookDispatch.isIdle, let idle = whenHooksIdle {
            whenHooksIdle = nil
            idle()
        }
        return first ?? []
    }

    private func handle(_ input: Input) -> [Directive] {
        switch input {
        case .event(let event):
            guard var node = core, ending == nil else { return [] }
            let directives = node.handle(event, now: now())
            core = node
            execute(directives)
            return directives
        case .linkUp(let link, let peer):
            return admit(link, peer)
        }
    }

    /// The node's clock: every instant handed to the core comes from here.
    func now() -> Instant { BootClock.now() }

    static func wallClockMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    // MARK: - Directives out

    private func execute(_ directives: [Directive]) {
        let exits = directives.contains { if case .exit = $0 { true } else { false } }
        for directive in directives {
            // A failed persist ends the node at once: nothing after it may be carried out.
            guard ending?.abrupt != true else { return }
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
                    // Without a durable vote this node could vote twice: stop at once, like a
                    // crash (no goodbye, nothing after this directive, exit status 1).
                    logger.critical("cannot persist the vote: \(error)", metadata: metadata())
                    finish(code: 1, abrupt: true)
                    return
                }
            case .runHook(let run):
                hookDispatch.enqueue(run)
            case .notice(let notice):
                log(notice, exiting: exits)
            case .wakeUp(let at):
                // Most events ask for the same instant (the next heartbeat): keep that timer.
                if at == timerDeadline, timer != nil { continue }
                timer?.cancel()
                timerDeadline = at
                // A relative delay on NIO's (monotonic) timer: if the host is suspended
                // meanwhile, the tick comes late, and reads the boot-time clock that counted it.
                let delay = max(0, at.nanoseconds - now().nanoseconds)
                timer = loop.scheduleTask(in: .nanoseconds(delay)) {
                    self.timer = nil
                    self.feed(.tick)
                }
            case .exit(let code):
                finish(code: code)
            case .forgetAnswered:
                break  // returned to forget(_:) with the event's directives
            case .refuseLink(let peer, let refusal):
                guard let admitting, admitting.peer.name == peer.name, admitting.peer.instance == peer.instance else {
                    logger.debug("the core refused a link to \(peer.name) (instance \(String(peer.instance, radix: 16))) that is not being admitted; ignored", metadata: metadata())
                    continue
                }
                refuse(admitting.link, peer, refusal)
            }
        }
    }

    // MARK: - Hooks

    /// When no hook runs: asks the core, now, whether the next queued hook may start (a
    /// master hook only within its lease), logs and reports each skipped one, and hands the
    /// one that may start to the runner.
    private func startNextHook() {
        guard !hookDispatch.isRunning, !hookDispatch.isIdle else { return }
        let core = self.core
        let steps = hookDispatch.next(runner: hooks != nil) { run in
            core?.mayStartHook(run, now: self.now()) ?? !run.isMasterHook
        }
        for step in steps {
            switch step {
            case .skipped(let run, let reason):
                log(.hookSkipped(run, reason: reason))
                inbox.append(.event(.hookFinished(run.id)))
            case .finished(let run):
                // No hook file for this role: it has "finished" (the core waits for it on a handover).
                inbox.append(.event(.hookFinished(run.id)))
            case .start(let run):
                hooks?.submit(run)
            }
        }
    }

    /// Called by the hook runner (any thread) when a hook finished or was killed.
    public func hookCompleted(_ id: UInt64) {
        loop.execute {
            self.hookDispatch.finish(id)
            self.feed(.hookFinished(id))
        }
    }

    // MARK: - Finishing

    /// Ends the node: `.exit` from the core (after its goodbyes), or an abrupt stop.
    private func finish(code: Int32, abrupt: Bool = false) {
        guard ending == nil else { return }
        let ending = Ending(code: code, message: exitMessage, abrupt: abrupt)
        self.ending = ending
        notifier.stopping()
        timer?.cancel()
        watchdog?.cancel()
        if abrupt {
            // Like a crash: close everything now, start no queued hook.
            hookDispatch.clear()
            for link in links.values { link.closeQuietly() }
            closeSockets()
            endingPromise.succeed(ending)
            return
        }
        // A node refused by the cluster (status 2) never was part of it: its one line says why.
        logger.log(level: exitMessage == nil ? .info : .debug, "\(settings.name) leaves the cluster (exit status \(code))", metadata: metadata())
        // Let the goodbyes reach the peers, close everything, then wait for the queued hooks
        // (a leaving master's slave hook, say), which still start one at a time.
        let flushes = links.values.map { $0.closeAfterFlush() }
        EventLoopFuture.andAllComplete(flushes, on: loop).whenComplete { _ in
            self.closeSockets()
            let done = { self.endingPromise.succeed(ending) }
            if self.hookDispatch.isIdle {
                done()
            } else {
                self.whenHooksIdle = done
            }
        }
    }

    private func closeSockets() {
        server?.close(promise: nil)
        discovery?.close(promise: nil)
        stdinChannel?.close(promise: nil)
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
        // Another process with this node's own name is dialled too: the link settles which keeps it.
        guard ending == nil, peer.instance != identity?.instance else { return }
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

    /// A link's handshake finished. Returns `false` when the link must be closed at once (another
    /// cluster, or this very process); otherwise the core decides, in turn, whether it is
    /// admitted (`admit`).
    func linkEstablished(_ link: PeerLink, hello: Hello) -> Bool {
        handshaking.remove(ObjectIdentifier(link))
        if let expected = link.expected, attempts[expected.name] == expected.instance { attempts[expected.name] = nil }
        guard hello.cluster == settings.cluster else {
            dropped.note("cluster", error: "refused \(hello.identity.name): it belongs to cluster \(hello.cluster), not \(settings.cluster)", logger: logger)
            return false
        }
        let peer = hello.identity
        // A link to this very process (its own announce answered); another process with this
        // node's name goes to the core like any other, which refuses it.
        if peer.name == settings.name, peer.instance == identity?.instance { return false }
        if let expected = link.expected, expected.name != peer.name {
            // Someone else answered at that address: the node we looked for is not there.
            loop.execute { self.feed(.linkDown(name: expected.name, instance: expected.instance, .unreachable)) }
        }
        enqueue(.linkUp(link, peer))
        return true
    }

    /// The core is told of a completed handshake *before* the link replaces any link of the
    /// same name: it decides whether the newcomer is a new start of that node (the link is
    /// installed, the old one closed) or a second live process with that name (the link is
    /// refused, see `refuse`).
    private func admit(_ link: PeerLink, _ peer: NodeIdentity) -> [Directive] {
        guard link.isActive else { return [] }  // closed while it waited its turn
        guard ending == nil, var node = core else {
            link.closeQuietly()
            return []
        }
        if let existing = links[peer.name], existing !== link, existing.identity?.instance == peer.instance {
            // Both sides connected at once: keep the link opened by the smaller name, on both sides.
            let opener = link.expected != nil ? settings.name : peer.name
            if opener == min(settings.name, peer.name) {
                links[peer.name] = link
                existing.closeQuietly()
            } else {
                link.closeQuietly()
            }
            return []
        }
        if links[peer.name] == nil, links.count >= settings.coreConfiguration.maximumPeers {
            dropped.note("table", error: "peer table full; refused \(peer.name)", logger: logger)
            link.closeQuietly()
            return []
        }
        let directives = node.handle(.linkUp(peer), now: now())
        core = node
        let refused = directives.contains {
            if case .refuseLink(let id, _) = $0 { id.name == peer.name && id.instance == peer.instance } else { false }
        }
        if !refused {
            if peer.name == settings.name {
                // Never a link under this node's own name (the core refuses those; if it lets
                // one pass, it is closed all the same).
                link.closeQuietly()
            } else {
                // A link of this name that is still open belonged to an older instance, which
                // the core has just accepted as gone (a re-entry).
                if let existing = links[peer.name], existing !== link { existing.closeQuietly() }
                links[peer.name] = link
            }
        }
        admitting = (link, peer)
        defer { admitting = nil }
        execute(directives)
        return directives
    }

    /// Carries out the core's refusal of a link it was just told of: the link is not installed
    /// (the holder's stays); the newcomer is told the name is taken, or the link just closes.
    private func refuse(_ link: PeerLink, _ peer: NodeIdentity, _ refusal: LinkRefusal) {
        var m = metadata()
        m["quorum.peer"] = "\(peer.name)"
        m["quorum.peer.address"] = "\(peer.address):\(peer.port)"
        m["quorum.peer.instance"] = "\(String(peer.instance, radix: 16))"
        switch refusal {
        case .nameTaken(let holder):
            m["quorum.holder.address"] = "\(holder.address):\(holder.port)"
            if peer.name == settings.name {
                logger.warning("\(settings.name) refused a link from another process named \(peer.name) at \(peer.address):\(peer.port): this node, at \(holder.address):\(holder.port), holds the name here; told it the name is taken", metadata: m)
            } else {
                logger.warning("\(settings.name) refused a second node named \(peer.name) at \(peer.address):\(peer.port): \(peer.name) already runs at \(holder.address):\(holder.port); told it the name is taken", metadata: m)
            }
            link.send(.nameTaken(holder: holder))
            _ = link.closeAfterFlush()
        case .holderNotYetGone(let holder):
            m["quorum.holder.address"] = "\(holder.address):\(holder.port)"
            logger.warning("\(settings.name) refused \(peer.name) at \(peer.address):\(peer.port) for now: the member \(peer.name) at \(holder.address):\(holder.port) is silent but not known to be gone", metadata: m)
            link.closeQuietly()
        }
    }

    func linkHandshakeStarted(_ link: PeerLink) -> Bool {
        guard handshaking.count < Self.maximumHandshakes, ending == nil else { return false }
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
        guard let peer = link.identity else { return }
        if links[peer.name] === link {
            feed(.message(message, from: peer.name))
        } else if case .nameTaken = message {
            // The answer on a link that was never installed: two processes with one name both
            // refuse the link between them, and each must read the other's refusal.
            feed(.message(message, from: peer.name))
        }
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
            return Self.report(core.status(now: self.now()), uptime: self.now() - self.startedAt)
        }
    }

    public func peerReports() -> EventLoopFuture<[PeerReport]> {
        loop.submit {
            self.feed(.tick)
            guard let core = self.core else { return [] }
            return core.peerStatuses(now: self.now()).map { p in
                PeerReport(
                    name: p.identity.name, address: p.identity.address, port: Int(p.identity.port),
                    state: PeerReport.State(rawValue: p.state.rawValue) ?? .lost, birth: p.identity.birth,
                    instance: String(p.identity.instance, radix: 16),
                    lastHeardMillisecondsAgo: p.silence.map { Int64($0.milliseconds) })
            }
        }
    }

    public func forget(_ peer: String) -> EventLoopFuture<ForgetOutcome> {
        loop.submit {
            // Nothing is being handled inside a submitted task: the event's directives come back.
            for case .forgetAnswered(let name, let outcome) in self.feed(.forgetRequested(name: peer)) where name == peer {
                return outcome
            }
            return .unknown
        }
    }

    static func report(_ s: QuorumInstance.Status, uptime: Duration) -> StatusReport {
        StatusReport(
            name: s.identity.name, cluster: s.cluster, role: s.role.rawValue, master: s.master, quorate: s.quorate,
            epoch: s.epoch, clusterSize: s.clusterSize, majority: s.majority, connected: s.connected, lost: s.lost,
            metric: s.metric.rawValue,
            masterAddress: s.masterIdentity.map { "\($0.address):\($0.port)" }, address: s.identity.address,
            port: Int(s.identity.port), birth: s.identity.birth, instance: String(s.identity.instance, radix: 16),
            uptimeSeconds: uptime.nanosecondsClamped / 1_000_000_000)
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

    /// `exiting`: the same batch ends the node (`.exit`).
    private func log(_ notice: Notice, exiting: Bool = false) {
        var m = metadata()
        let line = notice.description(node: settings.name)
        let level: Logger.Level = notice.isDebug ? .debug : .info
        switch notice {
        case .masterChanged(let master, let epoch):
            m["MESSAGE_ID"] = "\(Self.masterChangeMessageID)"
            m["quorum.master"] = "\(master)"
            m["quorum.epoch"] = "\(epoch)"
            logger.notice("\(line)", metadata: m)
        case .masterGone(let previous, let epoch):
            m["quorum.peer"] = "\(previous)"
            m["quorum.previous.epoch"] = "\(epoch)"
            logger.log(level: level, "\(line)", metadata: m)
        case .peerConnected(let p, _), .peerReentered(let p), .peerLost(let p, _), .peerDispatched(let p), .peerForgotten(let p):
            m["quorum.peer"] = "\(p)"
            logger.log(level: level, "\(line)", metadata: m)
        case .peerRefused(let p, _):
            m["quorum.peer"] = "\(p)"
            logger.warning("\(line)", metadata: m)
        case .roleChanged(_, let to, let epoch, let cause):
            m["quorum.role"] = "\(to.rawValue)"
            m["quorum.epoch"] = "\(epoch)"
            m["quorum.cause"] = "\(cause.rawValue)"
            logger.info("\(line)", metadata: m)
        case .voted(let candidate, let epoch), .voteDeferred(let candidate, let epoch, _):
            m["quorum.peer"] = "\(candidate)"
            m["quorum.vote.epoch"] = "\(epoch)"
            logger.log(level: level, "\(line)", metadata: m)
        case .candidacyStarted(let epoch, _), .candidacyFailed(let epoch, _):
            m["quorum.vote.epoch"] = "\(epoch)"
            logger.log(level: level, "\(line)", metadata: m)
        case .steppingDown(let epoch, let cause):
            m["quorum.previous.epoch"] = "\(epoch)"
            m["quorum.cause"] = "\(cause.rawValue)"
            logger.log(level: level, "\(line)", metadata: m)
        case .membershipChanged(let stamp, let size):
            m["quorum.membership"] = "\(stamp)"
            m["quorum.members"] = "\(size)"
            logger.log(level: level, "\(line)", metadata: m)
        case .duplicateName(let name, let address, let port):
            m["quorum.peer"] = "\(name)"
            m["quorum.peer.address"] = "\(address):\(port)"
            logger.warning("\(line)", metadata: m)
        case .nameTaken(let holder):
            m["quorum.holder.address"] = "\(holder.address):\(holder.port)"
            m["quorum.holder.instance"] = "\(String(holder.instance, radix: 16))"
            guard exiting else {
                // A node that has run for a while keeps its name (the core decides): a warning.
                logger.warning("\(line)", metadata: m)
                return
            }
            // The core ends the node with status 2 right after this: the operator reads one
            // line, on standard error (quorumd prints `ended`'s message) or, under journald,
            // this entry with its fields.
            let message = "another node named \(settings.name) is already running at \(holder.address):\(holder.port); refusing to start a second one"
            if exitMessage == nil { exitMessage = message }
            if logOutput == .journal {
                logger.error("\(message)", metadata: m)
            } else {
                logger.debug("\(line)", metadata: m)
            }
        case .hookSkipped(let run, let reason):
            m["quorum.hook.role"] = "\(run.role.rawValue)"
            m["quorum.hook.epoch"] = "\(run.epoch)"
            m["quorum.hook.id"] = "\(run.id)"
            m["quorum.hook.reason"] = "\(reason)"
            logger.info("\(line)", metadata: m)
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
    private var last: [String: (at: Instant, suppressed: Int)] = [:]

    mutating func note(_ kind: String, error: String, logger: Logger) {
        let now = BootClock.now()
        if let entry = last[kind], now - entry.at < .seconds(10) {
            last[kind]?.suppressed += 1
            return
        }
        let suppressed = last[kind]?.suppressed ?? 0
        last[kind] = (now, 0)
        logger.info("dropped \(kind): \(error)\(suppressed > 0 ? " (and \(suppressed) more in the last 10 s)" : "")")
    }
}
