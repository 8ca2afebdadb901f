import Logging
import NIOCore
import QuorumControl
import QuorumControlServer
import QuorumCore
import QuorumSecurity
import QuorumSystemd

/// One node, as the rest of the process sees it: a `Sendable` handle whose every call hops
/// onto the node's event loop, where its parts live (``CoreAdapter`` with its ``Transport``
/// and ``Notices``, held in a `NIOLoopBoundBox`).
///
/// quorumd's `main.swift` loads the state, starts the node, and runs ``NodeService`` (its
/// end), the ``HookRunner`` and the control server (answered by ``ControlAdapter``) in one
/// service group.
public final class NodeDriver: Sendable {
    public let loop: EventLoop
    public let settings: NodeSettings
    private let store: StateStore
    private let adapter: NIOLoopBoundBox<CoreAdapter>
    private let endingPromise: EventLoopPromise<Ending>
    /// The node's Prometheus series (served by `--metrics-listen`).
    public let metrics: NodeMetrics
    private let metricsServer: MetricsServer?
    /// One element after every applied reload: the health check's runner waits on it while no
    /// check is configured (it never polls).
    let settingsChanged: AsyncStream<Void>
    private let settingsChangedContinuation: AsyncStream<Void>.Continuation

    public init(
        settings: NodeSettings, loop: EventLoop, logger: Logger, keyring: ClusterKeyring? = nil,
        notifier: SystemdNotifier = SystemdNotifier(), logOutput: LogOutput = .standardError
    ) {
        self.loop = loop
        self.settings = settings
        (settingsChanged, settingsChangedContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let store = StateStore(directory: settings.stateDirectory)
        self.store = store
        let ending = loop.makePromise(of: Ending.self)
        self.endingPromise = ending
        let metrics = NodeMetrics(name: settings.name, cluster: settings.cluster, startedAtSeconds: BootClock.wallClockMilliseconds() / 1000)
        self.metrics = metrics
        let notices = Notices(name: settings.name, cluster: settings.cluster, logger: logger, notifier: notifier, logOutput: logOutput, metrics: metrics)
        let adapter = NIOLoopBoundBox.makeBoxSendingValue(
            CoreAdapter(settings: settings, loop: loop, notices: notices, keyring: keyring, store: store, ending: ending),
            eventLoop: loop)
        self.adapter = adapter
        metricsServer = settings.metricsListen.map { endpoint in
            MetricsServer(host: endpoint.host, port: endpoint.port, loop: loop, logger: logger) {
                loop.submit {
                    adapter.value.refreshMetrics()
                    return metrics.exposition()
                }
            }
        }
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

    /// Binds the peer port (another free port if it is taken, unless seeds are configured:
    /// then ``PortTaken``) and the discovery port, then starts the core, whose role hooks go to `hooks`. Returns once every socket is bound.
    public func start(restored: PersistentState?, hooks: HookRunner?) async throws {
        let adapter = self.adapter
        do {
            try await loop.flatSubmit { adapter.value.start(restored: restored, hooks: hooks) }.get()
        } catch let taken as Transport.FixedPortTaken {
            throw PortTaken(description: taken.description)
        }
    }

    /// The peer port is taken while seeds are configured (their peers dial that very port).
    public struct PortTaken: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts serving `/metrics` when `--metrics-listen` asks for it (a port that cannot be
    /// bound is retried, never fatal).
    public func startMetrics() { metricsServer?.start() }

    /// Reads `q` + Enter from an interactive terminal: a graceful dispatch.
    public func watchTerminal() {
        let adapter = self.adapter
        loop.execute { adapter.value.transport.watchTerminal() }
    }

    // MARK: - Asked from elsewhere

    /// Applies a reload's settings on the node's loop (see ``Reloader``), then tells systemd
    /// the reload is over (`READY=1`, with the status line, which names a failed reload).
    func apply(_ new: NodeSettings?, keyring: ClusterKeyring?, failure: String?) async {
        let adapter = self.adapter
        try? await loop.submit {
            if let new { adapter.value.apply(new, keyring: keyring) }
            adapter.value.notices.reloadFinished(failure: failure)
        }.get()
        if new != nil { settingsChangedContinuation.yield() }
    }

    /// Graceful dispatch; completes with the exit status once the node has ended.
    public func leave() -> EventLoopFuture<Int32> {
        let adapter = self.adapter
        loop.execute { adapter.value.feed(.leaveRequested) }
        return exitFuture
    }

    /// Called by the hook runner (any thread) when a hook finished or was killed.
    public func hookCompleted(_ completion: HookCompletion) {
        let adapter = self.adapter
        loop.execute { adapter.value.hookCompleted(completion.id, outcome: completion.outcome) }
    }

    /// A new watch: the snapshot and the subscription, taken together on the node's loop.
    public func watch() async -> Result<LineFeed, ControlServer.WatchRefusal> {
        let adapter = self.adapter
        do {
            return try await loop.submit {
                let a = adapter.value
                return a.notices.watch.subscribe(snapshot: a.watchSnapshot())
            }.get()
        } catch {
            return .failure(.init("the node could not answer: \(error)"))
        }
    }

    /// A watch event from outside the loop (a reload's outcome).
    func publish(_ build: @escaping @Sendable (Notices) -> WatchEvent) {
        let adapter = self.adapter
        loop.execute {
            let notices = adapter.value.notices
            if notices.watch.isWatched { notices.watch.publish(build(notices)) }
        }
    }

    /// Ends every watch (the node has ended).
    func finishWatches() {
        let adapter = self.adapter
        loop.execute { adapter.value.notices.watch.finishAll() }
    }

    /// What `status` reports: the core's view and the shell's (uptime, seeds, warnings).
    struct StatusSnapshot {
        var status: QuorumInstance.Status
        var uptime: Duration
        var seeds: [SeedReport]
        var broadcastDiscovery: Bool
        var warnings: [String]
        var standby: StandbyReport?
        var check: CheckReport?
    }

    func statusSnapshot() -> EventLoopFuture<StatusSnapshot?> {
        let adapter = self.adapter
        let metricsServer = self.metricsServer
        return loop.submit {
            let a = adapter.value
            guard let status = a.status() else { return nil }
            let unsealed = !a.settings.seeds.isEmpty && a.transport.keyring == nil
            var warnings = unsealed ? [Notices.unsealedSeedsWarning] : []
            if let problem = metricsServer?.problem { warnings.append("metrics: " + problem) }
            if let differ = a.preemptionWarning { warnings.append(differ) }
            return StatusSnapshot(
                status: status, uptime: a.now() - a.startedAt, seeds: a.seeds.reports, broadcastDiscovery: a.settings.broadcastDiscovery,
                warnings: warnings,
                standby: a.switches.standbyReport, check: a.switches.checkReport(a.settings))
        }
    }

    func peerSnapshot() -> EventLoopFuture<[QuorumInstance.PeerStatus]> {
        let adapter = self.adapter
        return loop.submit { adapter.value.peerStatuses() }
    }

    func stepDown(to target: String?, timeout: Duration) -> EventLoopFuture<StepDownReport> {
        let adapter = self.adapter
        return loop.flatSubmit { adapter.value.stepDown(to: target, timeout: timeout) }
    }

    /// Standby on or off; the line for the operator, or why it could not be recorded.
    func standby(on: Bool, untilRestart: Bool) -> EventLoopFuture<Result<String, StateStore.Failure>> {
        let adapter = self.adapter
        return loop.submit {
            do throws(StateStore.Failure) {
                return .success(try adapter.value.setStandby(on: on, untilRestart: untilRestart))
            } catch {
                return .failure(error)
            }
        }
    }

    // MARK: - The health check

    /// The check in force (nil: none), read before every run.
    func checkSettings() async -> HealthCheckSettings? {
        let adapter = self.adapter
        return try? await loop.submit { adapter.value.settings.check }.get()
    }

    /// What a check is told of the node.
    func checkEnvironment() async -> [String: String] {
        let adapter = self.adapter
        return (try? await loop.submit { adapter.value.checkEnvironment }.get()) ?? [:]
    }

    func checkFinished(passed: Bool, result: String, output: String?, fullOutput: String, startedAt: Int64, took: Duration) async {
        let adapter = self.adapter
        try? await loop.submit {
            adapter.value.checkFinished(passed: passed, result: result, output: output, fullOutput: fullOutput, startedAt: startedAt, took: took)
        }.get()
    }

    func forget(_ peer: String) -> EventLoopFuture<ForgetOutcome> {
        let adapter = self.adapter
        return loop.submit { adapter.value.forget(peer) }
    }
}
