/// What a node says about itself that decides whether it may be master and how much it is
/// wanted: the operator's preferences (priority, preemption, standby, witness) and its
/// health check. It is a preference among eligible members, never a vote weight: every
/// member still has one vote, and majorities, epochs and leases are untouched.
///
/// Sent to every peer in an `eligibility` frame (protocol 3) when a link comes up and at once
/// when it changes; it takes effect only while every alive member speaks protocol 3 (see
/// `QuorumInstance.preferencesActive`), so a cluster mid-upgrade elects as before.
public struct Eligibility: Sendable, Equatable {
    public enum Health: UInt8, Sendable, CaseIterable {
        /// No check is configured: health does not count.
        case unchecked = 0
        /// A check is configured and has not passed yet (a node that just started).
        case unknown = 1
        case passing = 2
        case failing = 3
    }

    /// 1…255, higher preferred; 0: never master (it still votes).
    public var priority: UInt8
    /// Whether a member of higher priority may take the role from this node while it is a
    /// working master. The master's own value decides.
    public var preempt: Bool
    /// How long a member of higher priority must have been alive and eligible before it
    /// takes the role from this node (the master's own value decides).
    public var preemptDelay: Duration
    /// A voting member that may not be master (`quorumctl standby on`).
    public var standby: Bool
    public var health: Health
    /// A member that votes and counts but never stands, and runs no hook.
    public var witness: Bool

    public static let defaultPriority: UInt8 = 100
    public static let defaultPreemptDelay: Duration = .seconds(10)
    /// The longest `preemptDelay` the wire carries.
    public static let maximumPreemptDelay: Duration = .seconds(3600)

    public init(priority: UInt8 = defaultPriority, preempt: Bool = true, preemptDelay: Duration = defaultPreemptDelay,
                standby: Bool = false, health: Health = .unchecked, witness: Bool = false) {
        self.priority = priority
        self.preempt = preempt
        self.preemptDelay = preemptDelay
        self.standby = standby
        self.health = health
        self.witness = witness
    }

    /// Why this node may not be master now, most lasting first; empty when it may.
    public var ineligibleReasons: [IneligibleReason] {
        var reasons: [IneligibleReason] = []
        if witness { reasons.append(.witness) }
        if priority == 0 { reasons.append(.priorityZero) }
        if standby { reasons.append(.standby) }
        if health == .failing { reasons.append(.checkFailing) }
        if health == .unknown { reasons.append(.checkUnknown) }
        return reasons
    }

    public var isEligible: Bool { ineligibleReasons.isEmpty }
}

/// Why a member may not be master.
public enum IneligibleReason: String, Sendable, CaseIterable {
    case witness
    case priorityZero = "priority-0"
    case standby
    case checkFailing = "check-failing"
    case checkUnknown = "check-unknown"
}

extension Eligibility {
    /// The election order among eligible members: higher priority, then the metric.
    static func isPreferred(_ a: (NodeIdentity, Eligibility), over b: (NodeIdentity, Eligibility), metric: Metric) -> Bool {
        if a.1.priority != b.1.priority { return a.1.priority > b.1.priority }
        return metric.isBetter(a.0, than: b.0)
    }
}
