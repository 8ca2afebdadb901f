import QuorumCore

/// The node's side of the role-hook queue: the core's `HookQueue` decides which queued hook
/// runs and which is stale; this adds which file a run uses and what the runner is told.
///
/// Lives on the driver's event loop. The driver enqueues each `Directive.runHook`, and whenever
/// no hook runs it calls ``next(mayStart:)`` with the core's `mayStartHook` evaluated *at that
/// moment*, so neither a slow previous hook nor a slow `fsync` can carry a master hook past the
/// lease it was queued under. The `HookRunner` is then handed one run at a time and reports it
/// finished; the driver passes that to ``finish(_:)`` and the core.
struct HookDispatch {
    private var queue = HookQueue()
    /// The hook files; a reload may change them (from the next run on).
    var masterHook: String?
    var slaveHook: String?
    let name: String
    let cluster: String

    init(masterHook: String?, slaveHook: String?, name: String, cluster: String) {
        self.masterHook = masterHook
        self.slaveHook = slaveHook
        self.name = name
        self.cluster = cluster
    }

    /// What the driver does next with the queue.
    enum Step: Equatable {
        /// Hand this run to the hook runner; report its end with ``HookDispatch/finish(_:)``.
        case start(HookInvocation)
        /// No hook file is configured for this role: the run has "finished" at once. Tell the
        /// core (a step-down waits for its hook id).
        case finished(HookRun)
        /// Not started: stale, or a master hook whose lease has ended. Log it and tell the core
        /// it finished.
        case skipped(HookRun, reason: String)
    }

    /// A hook runs (handed to the runner and not yet reported finished).
    var isRunning: Bool { queue.running != nil }
    /// Nothing runs and nothing waits.
    var isIdle: Bool { queue.running == nil && queue.isEmpty }

    mutating func enqueue(_ run: HookRun) { queue.enqueue(run) }

    /// The runner reported run `id` finished (or killed at the timeout).
    mutating func finish(_ id: UInt64) { queue.finish(id) }

    /// Drops the queue (an abrupt stop: nothing more is started).
    mutating func clear() { queue.clear() }

    /// When no hook runs: the hooks to skip and the one to start, in that order. `mayStart`
    /// is asked now, once per queued run that is not stale. `runner` is `false` when the node
    /// has no hook runner (then every run "finishes" at once, as with no file).
    mutating func next(runner: Bool = true, mayStart: (HookRun) -> Bool,
                       prepare: (HookRun) -> HookRun = { $0 }) -> [Step] {
        let next = queue.next(mayStart: mayStart, prepare: prepare)
        var steps = next.skipped.map { Step.skipped($0.0, reason: $0.1) }
        guard let run = next.start else { return steps }
        guard runner, let path = run.isMasterHook ? masterHook : slaveHook else {
            queue.finish(run.id)
            steps.append(.finished(run))
            return steps
        }
        steps.append(.start(HookInvocation(
            id: run.id, path: path, role: run.role.rawValue, previousRole: run.previousRole.rawValue,
            name: name, cluster: cluster, master: run.master, epoch: run.epoch)))
        return steps
    }
}
