import QuorumCore

/// A deterministic simulation of a cluster: nodes running the real `QuorumInstance` over a
/// simulated network, with every fault drawn from one seeded generator.
///
/// The world is hostile: each node has its own clock (its own rate, forward jumps, and host
/// suspends during which it keeps counting), state directories are sometimes wiped, fsync
/// is sometimes slow, hooks sometimes take seconds, a second process with a member's name
/// sometimes starts, newcomers arrive during partitions, the operator forgets crashed
/// nodes, and every schedule draws its own cluster size and configuration. The checker
/// judges from the global view (global simulated time), not from each node's opinion.
public struct SimulationOptions: Sendable {
    /// A fixed cluster size (2 to 9); `nil` draws one per schedule.
    public var nodes: Int? = nil
    /// Simulated time of one schedule (faults happen in the first part, then it heals).
    public var duration: Duration = .seconds(12)
    /// How long the network is whole and fault-free, with every node back, before the
    /// final liveness check: all nodes agree on one master.
    public var settle: Duration = .seconds(4)
    /// After the world becomes whole (after every heal, not only the final one), every node
    /// agrees on one master holding its lease within this bound.
    public var agreementBound: Duration = .milliseconds(2300)
    public var faultsPerSchedule: ClosedRange<Int> = 3...8
    /// Hooks last up to this long when set (uniformly); `nil` draws from a distribution with
    /// a long tail: most take milliseconds, some 1 to 4 s.
    public var maximumHookTime: Duration? = nil
    /// The fault kinds a schedule may draw (all by default); for finding which kind finds what.
    public var faultKinds: Set<FaultKind> = Set(FaultKind.allCases)
    /// Record every step (for replaying one seed).
    public var trace: Bool = false
    /// Deliberately broken behaviour, to prove the checks catch it.
    public var plantedBug: PlantedBug? = nil
    /// A hole the core (or, for the shell's holes, the simulator) brings back on purpose.
    public var plantedHole: PlantedHole? = nil

    public init() {}
}

/// Bugs the simulator plants by configuring the core badly.
public enum PlantedBug: String, Sendable, CaseIterable {
    /// A master that ignores its lease: it answers as master although its lease ended.
    case ignoreLease = "ignore-lease"
    /// Votes are granted by a node that still hears a live master.
    case ignorePromise = "ignore-promise"
}

/// What `--plant NAME` names: one of the simulator's bugs or one of the core's holes.
public enum Plant: Sendable, Equatable {
    case bug(PlantedBug)
    case hole(PlantedHole)

    public init?(_ name: String) {
        if let b = PlantedBug.allCases.first(where: { $0.rawValue == name }) {
            self = .bug(b)
        } else if let h = PlantedHole.allCases.first(where: { $0.rawValue == name }) {
            self = .hole(h)
        } else {
            return nil
        }
    }

    public static var allNames: [String] { PlantedBug.allCases.map(\.rawValue) + PlantedHole.allCases.map(\.rawValue) }

    public func apply(to options: inout SimulationOptions) {
        switch self {
        case .bug(let b): options.plantedBug = b
        case .hole(let h): options.plantedHole = h
        }
    }
}

/// The kinds of fault a schedule draws from, counted in the summary.
public enum FaultKind: String, Sendable, CaseIterable, Comparable {
    /// SIGKILL of a node, restarted later with its state directory.
    case crash
    /// SIGKILL of whoever is master at that moment.
    case crashMaster = "crash-master"
    /// SIGKILL, restarted later with its state directory wiped.
    case wipe
    /// SIGSTOP and SIGCONT: the process stops, its clock and its kernel go on.
    case pause
    /// The host is suspended: the process stops and its clock (CLOCK_BOOTTIME) goes on, so it
    /// has jumped on resume.
    case suspend
    /// The node's host stalls (a VM stalled or migrated) and its clock jumps forward by the
    /// stall on resume.
    case clockJump = "clock-jump"
    /// Each node's clock runs at its own rate (within ±2 %), for the whole schedule.
    case clockRate = "clock-rate"
    /// A graceful leave, and a start again later.
    case leave
    case partition
    case oneWay = "one-way"
    case datagramLoss = "datagram-loss"
    /// fsync takes up to hundreds of milliseconds, sometimes seconds, on one node for a while.
    case slowDisk = "slow-disk"
    /// A second process with a member's name starts for a while (a host started by mistake).
    case duplicate
    /// Some nodes start late, perhaps into a partition.
    case newcomer
    /// A node crashes; the operator forgets it; it comes back later.
    case forget
    /// Hooks that take 1 to 4 s.
    case slowHook = "slow-hook"
    /// The master's side of a partition is one short of half, and a node that has never run
    /// starts there: a membership change under way across a split (the tie-breaker's case).
    case splitJoin = "split-join"
    /// Each node draws a priority (some 0), preemption and a preempt delay for the schedule.
    case priority
    /// One member is a witness: it votes and counts, never stands.
    case witness
    /// The operator puts a node in standby for a while (`quorumctl standby on`, then off).
    case standby
    /// Every node runs a health check; one node's check fails for a while, sometimes flapping.
    case checkFlap = "check-flap"
    /// The operator asks a node for a planned step-down, with or without a target.
    case stepDown = "step-down"

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

public struct Violation: Sendable, CustomStringConvertible {
    public var seed: UInt64
    /// Global simulated time.
    public var time: Instant
    public var rule: String
    public var detail: String
    public var description: String { "seed \(seed) at \(time): \(rule): \(detail)" }
}

public struct ScheduleResult: Sendable {
    public var seed: UInt64
    public var violations: [Violation]
    public var faults: [String]
    /// How many faults of each kind the schedule applied.
    public var faultCounts: [FaultKind: Int]
    public var trace: [String]
    /// The schedule's drawn shape (size, configuration), for reports.
    public var shape: String
    /// Time from the final heal to agreement on one master.
    public var settleTime: Duration?
    public var events: Int
    /// Failover times after crashes of the master: crash → next master's hook start.
    public var crashFailovers: [Duration]
    public var leaveHandovers: [Duration]
    /// How many times the world became whole and the agreement bound was checked.
    public var agreementChecks: Int
}

public struct ClusterSimulator: Sendable {
    public let options: SimulationOptions
    public init(options: SimulationOptions) { self.options = options }

    public func run(seed: UInt64) -> ScheduleResult {
        var world = World(options: options, seed: seed)
        world.run()
        return world.result
    }
}
