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

    private var core: QuorumInstance?
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
    private var ending: NodeDriver.Ending?
    /// Step-downs asked of this node, until their report.
    private lazy var stepDowns = StepDowns(loop: loop)
    /// `quorumctl standby on`: since when (milliseconds since 1970), and whether it is on disk.
    private(set) var standby: (since: Int64, persistent: Bool)?
    /// The health check's results and verdict (see ``HealthState``).
    private var healthState = HealthState()

    init(
        settings: NodeSettings, loop: EventLoop, notices: Notices, keyring: ClusterKeyring?,
        store: StateStore, ending: EventLoopPromise<NodeDriver.Ending>
    ) {
        self.loop = loop
        self.settings = settings
        self.notices = notices
        self.store = store
        self.endingPromise = ending
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
        // A check added by a reload counts from its first result (the role does not move on the
        // reload itself); a check replaced or retimed keeps the verdict of the old one until
        // the new one's results change it.
        if settings.check == nil, new.check != nil { healthState = HealthState(added: true) }
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
            self.standby = self.store.loadStandby().map { ($0, true) }
            if self.standby != nil { self.notices.standbyRestored() }
            var configuration = self.settings.coreConfiguration
            configuration.eligibility = self.ownEligibility
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

    /// The metrics' state gauges, from the status as it is now (lease included).
    func refreshMetrics() {
        guard let status = status(), let core else { return }
        let holdsLease = core.role == .master && core.currentMaster(now: now())?.name == settings.name
        notices.metrics?.update(status, holdsLease: holdsLease, peers: peerStatuses())
    }

    /// The snapshot a new watcher begins with.
    func watchSnapshot() -> WatchEvent {
        var e = notices.event(.snapshot)
        if let status = status() {
            e.role = status.role.rawValue
            e.master = status.master
            e.quorate = status.quorate
            e.epoch = status.epoch
            e.members = ([settings.name] + peerStatuses().filter { $0.state == .connected }.map(\.identity.name)).sorted()
        } else {
            e.role = "starting"
        }
        return e
    }

    // MARK: - Snapshots (for the control adapter)

    /// The core's status, after a tick has accounted for an ended lease or a silent peer.
    func status() -> QuorumInstance.Status? {
        feed(.tick)
        return core?.status(now: now())
    }

    func peerStatuses() -> [QuorumInstance.PeerStatus] {
        feed(.tick)
        return core?.peerStatuses(now: now()) ?? []
    }

    func forget(_ peer: String) -> ForgetOutcome {
        // Nothing is being handled inside a submitted task: the event's directives come back.
        for case .forgetAnswered(let name, let outcome) in feed(.forgetRequested(name: peer)) where name == peer {
            return outcome
        }
        return .unknown
    }

    // MARK: - Operator preferences

    /// This node's eligibility: its settings, its standby and its check's verdict.
    var ownEligibility: Eligibility {
        var e = settings.coreConfiguration.eligibility
        e.standby = standby != nil
        e.health = e.witness || settings.check == nil ? .unchecked : healthState.verdict
        return e
    }

    /// Tells the core where this node stands now (a master that may no longer hold the role
    /// steps down in order).
    func refreshEligibility() {
        feed(.eligibilityChanged(ownEligibility))
    }

    /// `quorumctl standby on|off [--until-restart]`. A persistent change is on disk before it
    /// takes effect; turning it off removes it from disk too.
    func setStandby(on: Bool, untilRestart: Bool) throws(StateStore.Failure) -> String {
        let name = settings.name
        if on {
            let since = standby?.since ?? BootClock.wallClockMilliseconds()
            if !untilRestart { try store.saveStandby(since: since) } else if standby?.persistent == true { try store.saveStandby(since: nil) }
            let was = standby != nil
            standby = (since, !untilRestart)
            notices.standbyChanged(on: true, persistent: !untilRestart)
            refreshEligibility()
            let kept = untilRestart ? "until the next restart" : "across restarts"
            return was ? "\(name) stays in standby (\(kept))" : "\(name) is in standby (\(kept)): it votes but may not be master"
        }
        guard standby != nil else { return "\(name) is not in standby" }
        try store.saveStandby(since: nil)
        standby = nil
        notices.standbyChanged(on: false, persistent: false)
        refreshEligibility()
        return "\(name) is out of standby: it may be master again (it takes the role back only by a higher priority)"
    }

    /// A check run ended: its result counts toward the verdict; only a change is logged.
    func checkFinished(passed: Bool, result: String, output: String?, fullOutput: String, startedAt: Int64, took: Duration) {
        guard let check = settings.check, ending == nil else { return }
        if !fullOutput.isEmpty { notices.checkOutput(fullOutput, result: result) }
        let change = healthState.record(passed: passed, result: result, output: output, startedAt: startedAt, took: took, fall: check.fall, rise: check.rise)
        switch change {
        case .passing(let first)?: notices.checkPassing(first: first)
        case .failing(let failures)?: notices.checkFailing(failures: failures, result: result, output: output)
        case nil: return
        }
        refreshEligibility()
    }

    /// What the check is told of the node (its role, master and epoch now).
    var checkEnvironment: [String: String] {
        let master = core?.currentMaster(now: now())
        return [
            "QUORUM_ROLE": core?.role.rawValue ?? "discovering", "QUORUM_NAME": settings.name, "QUORUM_CLUSTER": settings.cluster,
            "QUORUM_MASTER": master?.name ?? "", "QUORUM_EPOCH": String(core?.fencingEpoch ?? 0),
            "QUORUM_CHECK_FAILURES": String(healthState.lastPassed == false ? healthState.consecutive : 0),
        ]
    }

    /// A warning when the members do not all say the same of preemption (`--preempt`,
    /// `--preempt-delay`): the master's own value applies, which surprises whoever set the
    /// other one (keepalived users learned `nopreempt` the hard way).
    var preemptionWarning: String? {
        guard let core else { return nil }
        let own = core.eligibility
        var values: [(String, Eligibility)] = [(settings.name, own)]
        for p in peerStatuses() where p.state == .connected && p.isMember {
            if let e = p.eligibility, !e.witness { values.append((p.identity.name, e)) }
        }
        if own.witness { values.removeFirst() }
        func text(_ e: Eligibility) -> String { e.preempt ? "yes after \(e.preemptDelay.secondsText)s" : "no" }
        guard Set(values.map { text($0.1) }).count > 1 else { return nil }
        let listed = values.sorted { $0.0 < $1.0 }.map { "\($0.0) \(text($0.1))" }.joined(separator: ", ")
        return "members differ on preemption (\(listed)); the master's own value applies"
    }

    /// The check as `status` shows it (nil without one).
    var checkReport: CheckReport? { settings.check.map { healthState.report($0) } }

    /// `quorumctl step-down`: the report once a new master is known, the request is refused,
    /// or its time is up.
    func stepDown(to target: String?, timeout: Duration) -> EventLoopFuture<StepDownReport> {
        guard ending == nil, core != nil else {
            return loop.makeSucceededFuture(StepDownReport(outcome: .refused, error: "the node is not running", reason: "no-master"))
        }
        guard let (request, report) = stepDowns.begin(to: target, timeout: timeout, now: now(), expire: { [unowned self] id in
            self.stepDowns.expire(id, master: self.core?.currentMaster(now: self.now()))
        }) else {
            return loop.makeSucceededFuture(StepDownReport(outcome: .refused, error: "too many step-downs are waiting on this node", reason: "busy"))
        }
        feed(.stepDownRequested(request))
        observeStepDowns()
        return report
    }

    private func observeStepDowns() {
        guard let core else { return }
        let now = self.now()
        stepDowns.observe(master: core.currentMaster(now: now), now: now) {
            guard let p = core.status(now: now).pendingPreemption else { return nil }
            return "\(p.name) (priority \(p.priority)) will take the role back in \(p.after.secondsText)s (preempt-delay); run 'quorumctl -n \(p.name) standby on' to keep it off"
        }
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
