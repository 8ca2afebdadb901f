import QuorumCore

/// The hosts of the simulated world and the processes started on them: what the world keeps
/// of each (see World.swift for the world itself).
extension World {
    /// A host and the process on it (one process lineage: restarts keep the slot).
    struct Slot {
        var name: String
        var port: UInt16
        var address: String
        /// For a second process with a member's name: the slot of that member.
        var duplicateOf: Int? = nil
        var birthOverride: Int64? = nil
        var clock: NodeClock
        /// How far this host's wall clock (`CLOCK_REALTIME`) is from true time, in
        /// milliseconds: NTP keeps it within a few, whatever its monotonic clock's rate.
        var wallOffset: Int64 = 0
        var instance: QuorumInstance? = nil
        var status: Status = .stopped
        var generation = 0
        /// The state directory: what the last completed fsync left.
        var disk: PersistentState? = nil
        /// A write whose fsync has not completed (the node waits for it).
        var pendingDisk: PersistentState? = nil
        var busyUntil: Instant? = nil
        var pendingDirectives: [Directive] = []
        /// While set, fsync is slow on this host.
        var slowDiskUntil: Instant? = nil
        /// The wake-up the core asked for, on its own clock, and its token.
        var wakeAt: Instant? = nil
        var wakeToken: UInt64 = 0
        /// Events that arrived while the process could not take them (paused, suspended, in fsync).
        var held: [Event] = []
        var hooks = HookSlot()
        /// Exited with code 2 (its name is taken): not restarted by faults.
        var noRestart = false
        var lastExit: Int32? = nil
        /// An operator forgot this node (see `mustWaitForTheForgetting`).
        var forgotten = false
        /// Its host died for good and never comes back: the others must elect without it
        /// (wholeness, agreement and the final liveness check leave it out).
        var goneForGood = false
        /// The master this process follows (or is), and since when (global time), as of the
        /// last event it handled: a promise that lapses wakes it, so this is never stale.
        var followed: MasterClaim? = nil
        var followedSince: Instant = .zero

        /// The last global instant at which this host was not running freely (paused,
        /// suspended, stopped, its clock stopped), and when its process last started.
        var disturbedAt: Instant = .zero
        var runningSince: Instant = .zero

        /// The operator's settings for this host (priority, preemption, witness), and what it
        /// says now: standby, and its health check (nil: no check).
        var preferences = Eligibility()
        var standby = false
        var healthy: Bool? = nil
        /// The check's verdict the process has been told since its start (nil: none yet).
        var reportedHealth: Bool? = nil

        var isAlive: Bool { status == .running || status == .paused || status == .suspended }
        var isPrimary: Bool { duplicateOf == nil }
    }

    /// One process (one start of a slot), kept after it ends: who it linked with decides
    /// whether a cluster it belonged to ever met the old one (see `isLoneNewCluster`).
    struct ProcessRecord {
        var slot: Int
        var name: String
        /// It started with no state, or a new list only (a brand-new cluster, or the node
        /// left): with others like it that linked only among themselves, it is a new cluster
        /// that never met the old one (docs/protocol.md, "A node without state, alone").
        var startedAsNewcomer: Bool
        var since: Instant
        /// The processes (instances) it took a link with, and when it first did.
        var linked: Set<UInt64> = []
        var firstLinked: [UInt64: Instant] = [:]
        /// It ended by saying goodbye (a leave, or a dispatch on quorum loss): from then on it
        /// holds no cluster that a process it linked with could have met through it.
        var left = false
    }

    /// A brand-new cluster founded behind a partition from every other cluster that then had
    /// a master: when, and the processes of its list then (see `isSplitNewCluster`).
    struct ApartFounding {
        var at: Instant
        var processes: Set<UInt64>
    }
}
