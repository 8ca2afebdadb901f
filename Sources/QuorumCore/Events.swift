/// Why a peer link went down, as far as the shell can tell.
public enum LinkLoss: String, Sendable, Equatable {
    /// The connection was closed or reset. By itself this proves nothing about the peer.
    case closed
    /// A connection attempt to the peer's advertised port was actively refused: nothing
    /// listens there any more, so the peer's process is gone (see docs/protocol.md for the
    /// residual risk of a forged reset).
    case refused
    /// A connection attempt timed out or the network is unreachable: no evidence either way.
    case unreachable
}

/// Everything that can happen to a node. The shell passes each one, with the current
/// monotonic instant, to `QuorumInstance.handle(_:now:)`.
public enum Event: Sendable, Equatable {
    /// The node's timer fired (the instant asked for with `Directive.wakeUp`), or the shell
    /// wants the state brought up to date, for example before it answers a status request.
    case tick
    /// A discovery datagram arrived.
    case datagram(Announce)
    /// A peer link completed its handshake (a `Hello` from this identity, same cluster), with
    /// the protocol versions the peer said it speaks before its hello (nil: only version 1).
    case linkUp(NodeIdentity, speaks: ProtocolRange? = nil)
    /// A link to `name`'s `instance` is down, or a connection attempt to it failed.
    case linkDown(name: String, instance: UInt64, LinkLoss)
    /// A frame from a connected peer (never `.hello` or `.announce`: those are handshake
    /// and discovery, handled by the shell and `datagram`).
    case message(Message, from: String)
    /// The hook run with this id has finished (or was killed after its timeout).
    case hookFinished(UInt64)
    /// The operator asked this node to leave the cluster (SIGTERM, `quorumctl leave`, `q`).
    case leaveRequested
    /// The operator asked this node to forget a lost or dispatched node (`quorumctl forget`).
    /// Answered by `Directive.forgetAnswered`.
    case forgetRequested(name: String)
    /// This node's own eligibility changed (standby, a check's verdict, a reload of priority
    /// or preemption). A master that may no longer hold the role steps down in order.
    case eligibilityChanged(Eligibility)
    /// The operator asked for a planned step-down (`quorumctl step-down`). Answered by
    /// `Directive.stepDownAnswered` (forwarded to the master first when this node is not).
    case stepDownRequested(StepDownRequest)
}

/// The answer to `Event.forgetRequested`.
public enum ForgetOutcome: Sendable, Equatable {
    case forgotten
    case unknown
    /// The node is connected: only lost or dispatched nodes can be forgotten.
    case stillConnected
}

/// Why a node's role changed; carried to hooks and logs.
public enum RoleChangeCause: String, Sendable, Equatable {
    case joined
    case elected
    case handover
    case leaseExpired
    case quorumLost
    case quorumRegained
    case superseded
    case leaving
    case masterChanged
}

/// One run of a role hook. The shell runs hooks one at a time in the order given and
/// reports `Event.hookFinished(id)` for every one, also when no hook file is configured.
public struct HookRun: Sendable, Equatable {
    public var id: UInt64
    public var role: Role
    public var previousRole: Role
    public var epoch: UInt64
    public var master: String?
    public var cause: RoleChangeCause
    /// `true` for the master hook, `false` for the slave hook.
    public var isMasterHook: Bool { role == .master }
}

/// Things worth a log line. `description(node:)` gives the original program's wording.
public enum Notice: Sendable, Equatable {
    case masterChanged(master: String, epoch: UInt64)
    case masterGone(previous: String, epoch: UInt64)
    case peerConnected(name: String, connected: Int)
    case peerReentered(name: String)
    case peerLost(name: String, evidence: String)
    case peerDispatched(name: String)
    /// A peer's new start said it left this cluster and counts in no list of it up to `stamp`,
    /// and this node had not heard that goodbye: it counts the peer no longer.
    case peerLeftEarlier(name: String, stamp: MembershipStamp)
    case peerForgotten(name: String)
    case peerRefused(name: String, reason: String)
    case roleChanged(from: Role, to: Role, epoch: UInt64, cause: RoleChangeCause)
    case voted(for: String, epoch: UInt64)
    case voteDeferred(for: String, epoch: UInt64, reason: String)
    case candidacyStarted(epoch: UInt64, size: Int)
    case candidacyFailed(epoch: UInt64, reason: String)
    case steppingDown(epoch: UInt64, cause: RoleChangeCause)
    case membershipChanged(stamp: MembershipStamp, size: Int)
    /// Another cluster, whose list outranks this node's, was met (heard from `via`): this
    /// node's cluster dissolves into it.
    case clusterMet(size: Int, stamp: MembershipStamp, via: String)
    /// A second process named `name` (this node's name, or a member's) at that address.
    case duplicateName(name: String, address: String, port: UInt16)
    /// This node's name is held by a live member (`holder`): a second process with one name.
    case nameTaken(holder: NodeIdentity)
    /// A queued hook was not started: a newer role's hook is queued behind it, or it is a
    /// master hook and the node no longer holds its lease.
    case hookSkipped(HookRun, reason: String)

    /// `true` for lines shown only with `-d`.
    public var isDebug: Bool {
        switch self {
        case .voted, .voteDeferred, .candidacyStarted, .candidacyFailed, .membershipChanged: true
        default: false
        }
    }

    public func description(node: String) -> String {
        switch self {
        case .masterChanged(let m, let e): "\(node) set \(m) as new master (epoch \(e))"
        case .masterGone(let m, let e): "\(node) has no master: \(m) (epoch \(e)) is gone"
        case .peerConnected(let p, let n): "\(node) add \(p) to connected by handshake. Now are \(n) nodes connected"
        case .peerReentered(let p): "\(node) saw \(p) re-enter with a new instance"
        case .peerLost(let p, let why): "\(node) lost connection from \(p) (\(why))"
        case .peerDispatched(let p): "\(p) Dispatched from \(node)"
        case .peerLeftEarlier(let p, let s): "\(node) counts \(p) no longer: \(p) left the cluster (membership \(s) or before), and its goodbye never reached \(node)"
        case .peerForgotten(let p): "\(node) forgot \(p)"
        case .peerRefused(let p, let why): "\(node) refused \(p): \(why)"
        case .roleChanged(let from, let to, let e, let cause): "\(node) is now \(to.rawValue) (was \(from.rawValue), epoch \(e), \(cause.rawValue))"
        case .voted(let c, let e): "\(node) voted for \(c) in epoch \(e)"
        case .voteDeferred(let c, let e, let why): "\(node) defers its vote for \(c) in epoch \(e): \(why)"
        case .candidacyStarted(let e, let n): "\(node) asks for votes in epoch \(e) (cluster of \(n))"
        case .candidacyFailed(let e, let why): "\(node) candidacy in epoch \(e) failed: \(why)"
        case .steppingDown(let e, let cause): "\(node) steps down as master of epoch \(e) (\(cause.rawValue))"
        case .membershipChanged(let s, let n): "\(node) membership \(s): \(n) members"
        case .clusterMet(let n, let s, let via):
            "\(node) met another cluster through \(via) (\(n) members, membership \(s)) that outranks its own; joining it"
        case .duplicateName(let n, let a, let p):
            n == node ? "\(node) sees another node with its own name at \(a):\(p); refusing it"
                : "\(node) sees a second node named \(n) at \(a):\(p) while \(n) is not known to be gone; refusing it"
        case .nameTaken(let h): "\(node): the name is already held by a running member at \(h.endpoint) (instance \(String(h.instance, radix: 16)))"
        case .hookSkipped(let run, let why): "\(node) skips its queued \(run.role.rawValue) hook (epoch \(run.epoch)): \(why)"
        }
    }
}

/// What the core asks its shell to do, in order.
public enum Directive: Sendable, Equatable {
    /// Send a discovery datagram to the broadcast address.
    case broadcast(Announce)
    /// Open a link to this peer (if none is open or opening) and exchange `Hello`s.
    case connect(NodeIdentity)
    /// Send a frame on the link to the named peer; dropped if there is no link.
    case send(Message, to: String)
    /// Write this state durably (atomic replace and fsync) before doing what follows.
    case persist(PersistentState)
    /// Queue a role hook.
    case runHook(HookRun)
    /// Write a log line.
    case notice(Notice)
    /// Deliver `Event.tick` at this instant (replaces any earlier request).
    case wakeUp(at: Instant)
    /// Finish: run the queued hooks, flush the sends above, then end the process with `code`.
    case exit(code: Int32)
    /// The answer to `Event.forgetRequested(name)`, for the operator who asked.
    case forgetAnswered(name: String, ForgetOutcome)
    /// Refuse the link just reported up with this identity, and only that one (`holder`'s
    /// link has the same name and stays): see `LinkRefusal` for what the shell sends first.
    case refuseLink(NodeIdentity, LinkRefusal)
    /// The answer to `Event.stepDownRequested` with this id (the master's, when forwarded).
    case stepDownAnswered(id: UInt64, StepDownAnswer)
}

/// Why a link with a member's name is refused.
public enum LinkRefusal: Sendable, Equatable {
    /// A live, connected member holds the name: send `Message.nameTaken(holder)`, then close.
    /// The refused process, if it has just started, exits with status 2.
    case nameTaken(holder: NodeIdentity)
    /// The member holding the name is silent but not proven gone: close without a word;
    /// the newcomer dials again later and is admitted once the holder is known to be gone.
    case holderNotYetGone(holder: NodeIdentity)
}
