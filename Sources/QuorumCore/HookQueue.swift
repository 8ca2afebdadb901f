/// The queue of role hooks of one node, shared by every shell (the daemon, the simulator).
///
/// Hooks run one at a time, in order. A queued hook that is no longer the node's role is
/// stale: when a newer hook is queued behind it, only the newest runs; and a master hook
/// starts only while the core says the node holds that epoch's lease
/// (`QuorumInstance.mayStartHook`). A skipped hook is still reported finished to the core,
/// which waits for hook ids (a step-down's slave hook, for one).
public struct HookQueue: Sendable {
    private var queued: [HookRun] = []
    public private(set) var running: HookRun? = nil

    public init() {}

    public var isEmpty: Bool { queued.isEmpty }
    public var count: Int { queued.count }

    public mutating func enqueue(_ run: HookRun) { queued.append(run) }

    /// Marks the running hook finished.
    public mutating func finish(_ id: UInt64) {
        if running?.id == id { running = nil }
    }

    /// Drops everything (the process is gone).
    public mutating func clear() {
        queued = []
        running = nil
    }

    public struct Next: Sendable {
        /// The hook to start now, if any.
        public var start: HookRun?
        /// Hooks not started, each with why: report each as finished to the core.
        public var skipped: [(HookRun, String)]
    }

    /// When no hook runs: which queued hook to start now, and which to skip.
    /// `mayStart` is the core's `mayStartHook(_:now:)` at this instant; `prepare` its
    /// `preparedHook(_:now:)` (the epoch and master the hook is told, as of now).
    /// `skippingOlder: false` (test only, the stale-hook hole) runs every queued hook in turn.
    public mutating func next(mayStart: (HookRun) -> Bool, prepare: (HookRun) -> HookRun = { $0 }, skippingOlder: Bool = true) -> Next {
        var result = Next(start: nil, skipped: [])
        guard running == nil else { return result }
        while !queued.isEmpty {
            let run = queued.removeFirst()
            if skippingOlder, !queued.isEmpty {
                result.skipped.append((run, "a newer role's hook is queued behind it"))
                continue
            }
            if !mayStart(run) {
                result.skipped.append((run, "the node no longer holds the lease of epoch \(run.epoch)"))
                continue
            }
            let ready = prepare(run)
            running = ready
            result.start = ready
            break
        }
        return result
    }
}
