/// A planned step-down (`quorumctl step-down [--to NAME]`): asked of any node, decided by the
/// master. See QuorumInstance+StepDown.swift for the rules.
public struct StepDownRequest: Sendable, Equatable {
    /// Chosen by the node the operator asked: its answer carries the same id.
    public var id: UInt64
    /// The member that should take over; nil: the best eligible member other than the master.
    public var target: String?
    /// How long the old master stays out of elections; after it, it may be elected again.
    public var timeout: Duration

    public static let defaultTimeout: Duration = .seconds(10)
    public static let timeoutRange: ClosedRange<Duration> = .seconds(1) ... .seconds(300)

    public init(id: UInt64, target: String? = nil, timeout: Duration = defaultTimeout) {
        self.id = id
        self.target = target
        self.timeout = min(max(timeout, Self.timeoutRange.lowerBound), Self.timeoutRange.upperBound)
    }
}

/// Why a step-down was refused; nothing changed.
public struct StepDownRefusal: Sendable, Equatable, Error {
    public enum Reason: UInt8, Sendable, CaseIterable {
        case noMaster = 1
        case busy
        case unknownMember
        case alreadyMaster
        case targetIneligible
        case noOtherEligible
        case featureInactive

        /// The `reason` of `quorumctl step-down --json`.
        public var code: String {
            switch self {
            case .noMaster: "no-master"
            case .busy: "busy"
            case .unknownMember: "unknown-member"
            case .alreadyMaster: "already-master"
            case .targetIneligible: "target-ineligible"
            case .noOtherEligible: "no-other-eligible"
            case .featureInactive: "feature-inactive"
            }
        }
    }

    public var reason: Reason
    /// One line for the operator, e.g. `C is not eligible: standby`.
    public var message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }
}

/// The master's answer to a step-down request.
public enum StepDownAnswer: Sendable, Equatable {
    /// The master `from` of `epoch` steps down in order and hands over to `to`.
    case accepted(from: String, to: String, epoch: UInt64)
    case refused(StepDownRefusal)
}

/// A handover under way, as every member keeps it: the old master `from` stays out of
/// elections and `to` is wanted, until a master of an epoch above `epoch` is known or until
/// `until`. It changes only whom members vote for, never how many votes make a master.
struct Handover: Sendable, Equatable {
    var from: String
    var to: String
    var epoch: UInt64
    var startedAt: Instant
    var until: Instant
}
