import Logging
import QuorumControl
import NIOCore
import NIOPosix
import QuorumCore
import QuorumSecurity
import QuorumSystemd

/// The core's side of the shell: feeds one `QuorumInstance` every event with the current
/// instant of the node's clock (`BootClock`: `CLOCK_BOOTTIME`, which counts a suspend), and
/// carries out its directives in order: persist before send, hooks one at a time through
/// ``HookDispatch``, links admitted or refused as the core decides, the timer, the end.
///
/// Events that arrive while one is being handled wait their turn in an inbox, so the
/// directives of one event are always carried out before the next event is seen.
///
/// Concurrency: confined to the node's event loop (reached from other threads only through
/// ``NodeDriver``, which holds it in a `NIOLoopBoundBox`). Not `Sendable`.
final class CoreAdapter: TransportDelegate {
    let loop: EventLoop
    /// The settings in force: those of the start, then of the last reload.
    private(set) var settings: NodeSettings
    let notices: Notices
    let transport: Transport
    let seeds: SeedDialer
    private let store: StateStore
    private let endingPromise: EventLoopPromise<NodeDriver.Ending>
    private var hooks: HookRunner?

    private(set) var core: QuorumInstance?
    private(set) var identity: NodeIdentity?
    let startedAt = BootClock.now()
    /// The wall-clock time of this start, taken before any socket is bound, so that of two
    /// nodes started one after the other the first is the older.
    private let birth = BootClock.wallClockMilliseconds()
    private var timer: Scheduled<Void>?
    private var timerDeadline: Instant?
    private var watchdog: RepeatedTask?
    private var inbox: [Input] = []
    private var processing = false
    /// The link whose `linkUp` the core is handling: a `refuseLink` of its identity is for it.
    private var admitting: (link: PeerLink, peer: NodeIdentity)?
    /// Role hooks: queued here, one at a time on `hooks`.
    private var hookDispatch: HookDispatch
    /// Called once the hook queue is empty and no hook runs (set while finishing).
    private var whenHooksIdle: (() -> Void)?
    /// Set by `finish`: the node is leaving or has stopped; the core sees no more events.
    private(set) var ending: NodeDriver.Ending?
    /// Step-downs asked of this node, until their report.
    let stepDowns: StepDowns
    /// The operator's standby and the health check's verdict.
    let switches: OperatorSwitches

    init(
        settings: NodeSettings, loop: EventLoop, notices: Notices, keyring: ClusterKeyring?,
        store: StateStore, ending: EventLoopPromise<NodeDriver.Ending>
    ) {
        self.loop = loop
        self.settings = settings
        self.notices = notices
        self.store = store
        self.endingPromise = ending
        self.switches = OperatorSwitches(store: store, notices: notices)
        self.stepDowns = StepDowns(loop: loop)
        self.transport = Transport(loop: loop, settings: settings, keyring: keyring, notices: notices)
        self.seeds = SeedDialer(loop: loop, transport: transport, notices: notices, settings: settings)
        transport.seeds = seeds
        if !settings.seeds.isEmpty && keyring == nil { notices.seedsWithoutKey() }
        self.hookDispatch = HookDispatch(masterHook: settings.masterHook, slaveHook: settings.slaveHook, name: settings.name, cluster: settings.cluster)
        transport.delegate = self
        notices.snapshot = { [unowned self] in
            guard let core = self.core else { return nil }
            return (core.role, core.currentMaster(now: self.now()))
        }
        notices.epoch = { [unowned self] in self.core?.status(now: self.now()).epoch ?? 0 }
    }

    /// A reload's settings (already checked against these by ``ReloadPlan``): the hooks from
    /// the next run on, the key for links opened from now on, the seeds.
    func apply(_ new: NodeSettings, keyring: ClusterKeyring?) {
        hookDispatch.masterHook = new.masterHook
        hookDispatch.slaveHook = new.slaveHook
        transport.keyring = keyring
        seeds.replace(with: new.seeds, resolveInterval: new.peerResolveInterval)
        switches.reloaded(from: settings, to: new)
        settings = new
        // Priority, preemption and the check's verdict: told to the peers at once.
        refreshEligibility()
    }

    /// The node's clock: every instant handed to the core comes from here.
    func now() -> Instant { BootClock.now() }

    // MARK: - Start

    /// Binds the sockets, then starts the core. Completes once every socket is bound.
    func start(restored: PersistentState?, hooks: HookRunner?) -> EventLoopFuture<Void> {
        self.hooks = hooks
        return transport.bind().assumeIsolated().map { port in
            let devices = (try? System.enumerateDevices()) ?? []
            let address = AdvertisedAddress.choose(
                bind: self.settings.address, broadcast: self.settings.broadcastDiscovery ? self.settings.broadcastAddress : nil,
                interface: self.settings.discoveryInterface, devices: devices)
            let identity = NodeIdentity(name: self.settings.name, instance: UInt64.random(in: 1...UInt64.max), address: address, port: port, birth: self.birth)
            self.identity = identity
            self.notices.instance = String(identity.instance, radix: 16)
            self.switches.restore()
            var configuration = self.settings.coreConfiguration
            configuration.eligibility = self.switches.eligibility(self.settings)
            self.core = QuorumInstance(configuration: configuration, identity: identity, restored: restored, now: self.now(), seed: UInt64.random(in: 0...UInt64.max))
            if self.settings.broadcastDiscovery {
                self.notices.listening(address: self.settings.address, advertised: address, port: port, discoveryPort: self.settings.broadcastPort, via: self.settings.broadcastAddress)
            } else {
                self.notices.listening(address: self.settings.address, advertised: address, port: port)
                self.notices.discoveryOff(seeds: self.settings.seeds.count)
            }
            if let interval = self.notices.notifier.watchdogInterval {
                let notifier = self.notices.notifier
                self.watchdog = self.loop.scheduleRepeatedTask(initialDelay: .zero, delay: .nanoseconds(interval.nanosecondsClamped)) { _ in
                    notifier.watchdog()
                }
            }
            self.feed(.tick)
            self.publishStatus()
            self.seeds.start(ownPort: port)
        }.nonisolated()
    }

    // MARK: - Events in

    /// What waits in the inbox: an event for the core, or a link whose handshake completed
    /// (the core decides whether it is admitted, see `admit`).
    private enum Input {
        case event(Event)
        case linkUp(PeerLink, NodeIdentity)
    }

    var hello: Message? { identity.map { .hello(Hello(cluster: settings.cluster, identity: $0)) } }
    /// What a link sends before its hello: nothing for a node that speaks only version 1.
    var versions: Message? {
        settings.protocolVersion > WireFormat.lowestVersion
            ? .versions(ProtocolRange(lowest: WireFormat.lowestVersion, highest: settings.protocolVersion)) : nil
    }
    var isEnding: Bool { ending != nil }

    func linkUp(_ link: PeerLink, _ peer: NodeIdentity) { enqueue(.linkUp(link, peer)) }

    /// Feeds one event. Returns the directives of this event when it was handled at once
    /// (nothing was being handled), else none.
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
        if changed {
            publishStatus()
            observeStepDowns()
        }
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
            let directives = node.handle(event, now: now(), wallClock: BootClock.wallClockMilliseconds())
            core = node
            execute(directives)
            return directives
        case .linkUp(let link, let peer):
            return admit(link, peer)
        }
    }

    // MARK: - Directives out

    private func execute(_ directives: [Directive]) {
        let exits = directives.contains { if case .exit = $0 { true } else { false } }
        for directive in directives {
            // A failed persist ends the node at once: nothing after it may be carried out.
            guard ending?.abrupt != true else { return }
            switch directive {
            case .broadcast(let announce):
                transport.broadcast(announce)
            case .connect(let peer):
                transport.connect(to: peer, ownInstance: identity?.instance)
            case .send(let message, let to):
                transport.send(message, to: to)
            case .persist(let state):
                do {
                    try store.save(state)
                } catch {
                    // Without a durable vote this node could vote twice: stop at once, like a
                    // crash (no goodbye, nothing after this directive, exit status 1).
                    notices.persistFailed(error)
                    finish(code: 1, abrupt: true)
                    return
                }
            case .runHook(let run):
                hookDispatch.enqueue(run)
            case .notice(let notice):
                notices.log(notice, exiting: exits)
            case .wakeUp(let at):
                // Most events ask for the same instant (the next heartbeat): keep that timer.
                if at == timerDeadline, timer != nil { continue }
                timer?.cancel()
                timerDeadline = at
                // A relative delay on NIO's (monotonic) timer: if the host is suspended
                // meanwhile, the tick comes late, and reads the boot-time clock that counted it.
                let delay = max(0, at.nanoseconds - now().nanoseconds)
                timer = loop.assumeIsolated().scheduleTask(in: .nanoseconds(delay)) {
                    self.timer = nil
                    self.feed(.tick)
                }
            case .exit(let code):
                finish(code: code)
            case .forgetAnswered:
                break  // returned to forget(_:) with the event's directives
            case .stepDownAnswered(let id, let answer):
                stepDowns.answered(id, answer)
            case .refuseLink(let peer, let refusal):
                guard let admitting, admitting.peer.name == peer.name, admitting.peer.instance == peer.instance else {
                    notices.strayRefusal(peer)
                    continue
                }
                refuse(admitting.link, peer, refusal)
            }
        }
    }

    // MARK: - Links

    /// The core is told of a completed handshake *before* the link replaces any link of the
    /// same name: it decides whether the newcomer is a new start of that node (the link is
    /// installed, the old one closed), a second live process with that name (refused, see
    /// `refuse`), or one peer too many (refused with a notice: the link closes).
    private func admit(_ link: PeerLink, _ peer: NodeIdentity) -> [Directive] {
        guard link.isActive else { return [] }  // closed while it waited its turn
        guard ending == nil, var node = core else {
            link.closeQuietly()
            return []
        }
        if transport.settleCrossedLinks(link, peer) { return [] }
        let directives = node.handle(.linkUp(peer, speaks: link.peerVersions), now: now(), wallClock: BootClock.wallClockMilliseconds())
        core = node
        let refused = directives.contains {
            if case .refuseLink(let id, _) = $0 { id.name == peer.name && id.instance == peer.instance } else { false }
        }
        let turnedAway = directives.contains {
            if case .notice(.peerRefused(let name, _)) = $0 { name == peer.name } else { false }
        }
        if turnedAway {
            link.closeQuietly()
        } else if !refused {
            transport.install(link, as: peer)
        }
        admitting = (link, peer)
        defer { admitting = nil }
        execute(directives)
        return directives
    }

    /// Carries out the core's refusal of a link it was just told of: the link is not installed
    /// (the holder's stays); the newcomer is told the name is taken, or the link just closes.
    private func refuse(_ link: PeerLink, _ peer: NodeIdentity, _ refusal: LinkRefusal) {
        notices.refused(peer, refusal)
        switch refusal {
        case .nameTaken(let holder):
            link.send(.nameTaken(holder: holder))
            _ = link.closeAfterFlush()
        case .holderNotYetGone:
            link.closeQuietly()
        }
    }

    // MARK: - Hooks

    /// When no hook runs: asks the core, now, whether the next queued hook may start (a
    /// master hook only within its lease), logs and reports each skipped one, and hands the
    /// one that may start to the runner.
    private func startNextHook() {
        guard !hookDispatch.isRunning, !hookDispatch.isIdle else { return }
        let core = self.core
        let now = self.now()
        let steps = hookDispatch.next(runner: hooks != nil, mayStart: { run in
            core?.mayStartHook(run, now: now) ?? !run.isMasterHook
        }, prepare: { run in core?.preparedHook(run, now: now) ?? run })
        for step in steps {
            switch step {
            case .skipped(let run, let reason):
                notices.log(.hookSkipped(run, reason: reason))
                inbox.append(.event(.hookFinished(run.id)))
            case .finished(let run):
                // No hook file for this role: it has "finished" (the core waits for it on a handover).
                inbox.append(.event(.hookFinished(run.id)))
            case .start(let run):
                runningHook = (run, now)
                notices.hookStarted(run)
                hooks?.submit(run)
            }
        }
    }

    /// The hook handed to the runner, and when (for the watch's `hook-finished`).
    private var runningHook: (run: HookInvocation, since: Instant)?

    /// The hook runner finished (or killed) hook `id`.
    func hookCompleted(_ id: UInt64, outcome: HookOutcome) {
        if let running = runningHook, running.run.id == id {
            notices.hookFinished(running.run, outcome: outcome, after: now() - running.since)
            runningHook = nil
        }
        hookDispatch.finish(id)
        feed(.hookFinished(id))
    }

    // MARK: - Finishing

    /// Ends the node: `.exit` from the core (after its goodbyes), or an abrupt stop.
    private func finish(code: Int32, abrupt: Bool = false) {
        guard ending == nil else { return }
        let ending = NodeDriver.Ending(code: code, message: notices.exitMessage, abrupt: abrupt)
        self.ending = ending
        notices.stopping()
        stepDowns.cancelAll()
        timer?.cancel()
        watchdog?.cancel()
        if abrupt {
            // Like a crash: close everything now, start no queued hook.
            hookDispatch.clear()
            transport.closeNow()
            endingPromise.succeed(ending)
            return
        }
        notices.leaving(code: code)
        // Let the goodbyes reach the peers, close everything, then wait for the queued hooks
        // (a leaving master's slave hook, say), which still start one at a time.
        transport.closeAfterFlush().assumeIsolated().whenComplete { _ in
            let done = { self.endingPromise.succeed(ending) }
            if self.hookDispatch.isIdle {
                done()
            } else {
                self.whenHooksIdle = done
            }
        }
    }

    private func publishStatus() {
        guard let core else { return }
        notices.publish(core.status(now: now()))
    }
}
