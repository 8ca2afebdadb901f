/// One hook invocation the runner is asked to make: which file, and what it is told.
public struct HookInvocation: Sendable, Equatable {
    /// Chosen by the caller; reported back in ``HookCompletion`` so the core can be told
    /// "hook N finished".
    public var id: UInt64
    /// The hook file. A relative path is taken from the working directory at run time.
    public var path: String
    /// `QUORUM_ROLE`: the role just taken (`master`, `slave`, `no-quorum`, `dispatched`).
    public var role: String
    /// `QUORUM_PREVIOUS_ROLE`.
    public var previousRole: String
    /// `QUORUM_NAME`: this node's name.
    public var name: String
    /// `QUORUM_CLUSTER`.
    public var cluster: String
    /// `QUORUM_MASTER`: the master's name; empty in the environment when `nil`.
    public var master: String?
    /// `QUORUM_EPOCH`.
    public var epoch: UInt64

    public init(
        id: UInt64, path: String, role: String, previousRole: String,
        name: String, cluster: String, master: String?, epoch: UInt64
    ) {
        self.id = id
        self.path = path
        self.role = role
        self.previousRole = previousRole
        self.name = name
        self.cluster = cluster
        self.master = master
        self.epoch = epoch
    }

    /// The variables added to the inherited environment.
    public var environment: [String: String] {
        [
            "QUORUM_ROLE": role,
            "QUORUM_PREVIOUS_ROLE": previousRole,
            "QUORUM_NAME": name,
            "QUORUM_CLUSTER": cluster,
            "QUORUM_MASTER": master ?? "",
            "QUORUM_EPOCH": String(epoch),
        ]
    }
}

/// How a hook run ended.
public enum HookOutcome: Sendable, Equatable {
    /// The hook exited with this status (0 is success).
    case exited(Int32)
    /// The hook died of this signal (not sent by the runner).
    case signaled(Int32)
    /// The hook was still running after the timeout; its process group was killed.
    case timedOut
    /// The file does not exist.
    case missing
    /// The file exists but is neither executable nor a `.py` file.
    case notExecutable
    /// The process could not be started (the message says why).
    case failedToStart(String)
    /// The runner had already stopped when this run was submitted; nothing ran.
    case notRun

    public var isSuccess: Bool { self == .exited(0) }
}

/// Reported once per submitted run, in submission order, after the hook finished, was
/// killed, or could not be started.
public struct HookCompletion: Sendable, Equatable {
    public var id: UInt64
    public var outcome: HookOutcome

    public init(id: UInt64, outcome: HookOutcome) {
        self.id = id
        self.outcome = outcome
    }
}
