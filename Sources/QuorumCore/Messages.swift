/// A node's externally visible role.
public enum Role: String, Sendable, CaseIterable, Codable {
    /// Just started; not yet settled. No hook runs for it.
    case discovering
    case master
    case slave
    /// In a minority, or not admitted to a cluster that has no master: no master.
    case noQuorum = "no-quorum"
    /// Left the cluster (graceful leave, or a dispatch on quorum loss).
    case dispatched
    /// A member that votes but never stands (`--witness`): where another node would be slave.
    case witness
}

/// A member of the cluster as the masters record it: its latest identity.
public typealias MemberEntry = NodeIdentity

/// The list of names that count toward the cluster size, as decided by a master.
///
/// `(epoch, version)` orders lists totally: only the master of `epoch` creates
/// versions in it. Epoch 0 is a node's own view before any master was ever known.
///
/// A list whose `previous` is set is *joint*: the change from `previous` to `members` is not
/// yet known to a quorum of both, so a quorum under it is a strict majority of each (see
/// docs/protocol.md, "Membership changes").
public struct MembershipList: Sendable, Equatable {
    public var epoch: UInt64
    public var version: UInt64
    public var members: [MemberEntry]
    /// The list before the change, while the change is not yet known to a quorum of it.
    public var previous: [MemberEntry]?
    /// Which cluster the list belongs to: drawn by the master that elected itself from a
    /// brand-new list, and kept by every list after it; 0 for a new list (and for lists
    /// written before clusters were told apart, which match any).
    public var cluster: UInt64

    public init(epoch: UInt64, version: UInt64, members: [MemberEntry], previous: [MemberEntry]? = nil, cluster: UInt64 = 0) {
        self.epoch = epoch
        self.version = version
        self.members = members
        self.previous = previous
        self.cluster = cluster
    }

    /// Whether both lists belong to one cluster (an unknown cluster matches any).
    public func isSameCluster(as other: MembershipList) -> Bool {
        cluster == 0 || other.cluster == 0 || cluster == other.cluster
    }

    public var stamp: MembershipStamp { MembershipStamp(epoch: epoch, version: version) }

    /// Whether `name` is a member, or a member of the list before an unfinished change.
    public func names(_ name: String) -> Bool {
        members.contains { $0.name == name } || (previous ?? []).contains { $0.name == name }
    }

    /// The order in which two clusters that meet decide which one the other joins: more
    /// members first, then the newer stamp, then the member names. Both sides compute the
    /// same answer from the same two lists.
    public func outranks(_ other: MembershipList) -> Bool {
        if members.count != other.members.count { return members.count > other.members.count }
        if stamp != other.stamp { return stamp > other.stamp }
        return members.map(\.name).sorted().lexicographicallyPrecedes(other.members.map(\.name).sorted())
    }
}

public struct MembershipStamp: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var epoch: UInt64
    public var version: UInt64
    public init(epoch: UInt64, version: UInt64) {
        self.epoch = epoch
        self.version = version
    }
    public static func < (a: Self, b: Self) -> Bool { (a.epoch, a.version) < (b.epoch, b.version) }
    public static let bootstrap = MembershipStamp(epoch: 0, version: 0)
    public var description: String { "\(epoch).\(version)" }
}

/// The list a node held when it last said goodbye (persisted; sent in a `left` frame).
///
/// A member that did not hear the goodbye (it was down, or cut off) may hold an older list of
/// that cluster that still counts the node, while the members that heard it went on with
/// lists that do not. The node's next starts never count in such an older list: they
/// acknowledged the newer one before they left, and a quorum of the older list with them
/// need share no member with the quorums that made the newer lists without them.
public struct Departure: Sendable, Equatable {
    /// The protocol version that brought the `left` frame in.
    public static let protocolVersion: UInt8 = 4
    public var cluster: UInt64
    /// The list the node held when it left; in a `left` frame, the newest list of that
    /// cluster the sender does not count in.
    public var stamp: MembershipStamp

    public init(cluster: UInt64, stamp: MembershipStamp) {
        self.cluster = cluster
        self.stamp = stamp
    }

    /// Whether `list` is a list of this cluster (a list of cluster 0 was made by a build that
    /// did not tell clusters apart).
    public func isOfCluster(_ list: MembershipList) -> Bool {
        list.stamp != .bootstrap && (list.cluster == cluster || list.cluster == 0 || cluster == 0)
    }

    /// Whether `list` is a list of this cluster, no newer than `stamp`, that names `name`.
    public func reaches(_ list: MembershipList, naming name: String) -> Bool {
        isOfCluster(list) && list.stamp <= stamp && list.names(name)
    }

    /// Whether `name`, the node that left, must never count in `list`: one of the cluster
    /// it left that names it, older than the list it left.
    public func covers(_ list: MembershipList, naming name: String) -> Bool {
        reaches(list, naming: name) && list.stamp < stamp
    }

    /// The same cluster, up to `stamp` at least.
    func through(_ other: MembershipStamp) -> Departure {
        Departure(cluster: cluster, stamp: max(stamp, other))
    }
}

/// The protocol versions a node speaks, lowest to highest.
public struct ProtocolRange: Sendable, Equatable {
    public var lowest: UInt8
    public var highest: UInt8
    public init(lowest: UInt8, highest: UInt8) {
        self.lowest = lowest
        self.highest = highest
    }

    /// The highest version both speak, if they share one.
    public func common(with other: ProtocolRange) -> UInt8? {
        let v = min(highest, other.highest)
        return v >= max(lowest, other.lowest) ? v : nil
    }
}

/// Which master a node follows, and in which epoch.
public struct MasterClaim: Hashable, Sendable {
    public var name: String
    public var instance: UInt64
    public var epoch: UInt64
    public init(name: String, instance: UInt64, epoch: UInt64) {
        self.name = name
        self.instance = instance
        self.epoch = epoch
    }
}

/// The discovery datagram a node broadcasts: "here I am, connect to me".
public struct Announce: Sendable, Equatable {
    public var cluster: String
    public var identity: NodeIdentity
    public init(cluster: String, identity: NodeIdentity) {
        self.cluster = cluster
        self.identity = identity
    }
}

/// The first frame on a peer link, sent by both sides.
public struct Hello: Sendable, Equatable {
    public var cluster: String
    public var identity: NodeIdentity
    public init(cluster: String, identity: NodeIdentity) {
        self.cluster = cluster
        self.identity = identity
    }
}

/// Sent by every node to every connected peer each heartbeat interval, and at once when
/// something a peer must know changes.
public struct Heartbeat: Sendable, Equatable {
    /// The highest epoch the sender has seen.
    public var epoch: UInt64
    /// The sender's role.
    public var role: Role
    /// Non-nil while the sender is master, or a master stepping down whose hook still runs:
    /// receivers keep their promise to it.
    public var holding: UInt64?
    /// The master the sender follows (itself when master), if any.
    public var following: MasterClaim?
    /// The sender's heartbeat counter, and the last counter it received from the receiver.
    public var sequence: UInt64
    public var echo: UInt64
    /// The stamp of the newest membership list the sender has.
    public var membership: MembershipStamp

    public init(epoch: UInt64, role: Role, holding: UInt64?, following: MasterClaim?, sequence: UInt64, echo: UInt64, membership: MembershipStamp) {
        self.epoch = epoch
        self.role = role
        self.holding = holding
        self.following = following
        self.sequence = sequence
        self.echo = echo
        self.membership = membership
    }
}

/// Every message of the protocol.
public enum Message: Sendable, Equatable {
    case announce(Announce)
    case hello(Hello)
    case heartbeat(Heartbeat)
    /// The sender asks for votes to become master of `epoch`.
    case voteRequest(epoch: UInt64)
    /// The answer to a vote request. `granted == false` carries the voter's highest epoch.
    case voteReply(epoch: UInt64, granted: Bool)
    /// A master's membership list.
    case members(MembershipList)
    /// The sender, master of `epoch`, has stepped down and its slave hook has finished.
    case resign(epoch: UInt64)
    /// The sender leaves the cluster for good (graceful dispatch).
    case bye
    /// An operator asked the sender to forget a lost or dispatched node.
    case forget(name: String)
    /// The sender refuses this link: a live member it is connected to (`holder`) already
    /// has the receiver's name. Sent once, then the link is closed.
    case nameTaken(holder: NodeIdentity)
    /// The protocol versions the sender speaks; a link's first frame (protocol 2 and later:
    /// a peer that sends none speaks only version 1).
    case versions(ProtocolRange)
    /// What the sender says of its own eligibility (protocol 3): sent when a link comes up
    /// and at once when it changes.
    case eligibility(Eligibility)
    /// An operator's step-down request, forwarded to the master (protocol 3).
    case stepDown(StepDownRequest)
    /// The master's answer to a forwarded step-down request (protocol 3).
    case stepDownAnswer(id: UInt64, StepDownAnswer)
    /// The sender, master of `epoch`, stepped down for a planned handover: elect `to`, and
    /// not the sender, for `within` or until a newer master is known (protocol 3). Sent
    /// right before its `resign`.
    case handover(epoch: UInt64, to: String, within: Duration)
    /// The sender said goodbye to the cluster `Departure.cluster` while it held the list
    /// `Departure.stamp`, and the receiver's list (of that cluster, no newer, naming the
    /// sender) is one it must no longer count in (protocol 4): the goodbye that never reached
    /// the receiver, said again by the sender's next start.
    case left(Departure)

    public var kind: String {
        switch self {
        case .announce: "announce"
        case .hello: "hello"
        case .heartbeat: "heartbeat"
        case .voteRequest: "voteRequest"
        case .voteReply: "voteReply"
        case .members: "members"
        case .resign: "resign"
        case .bye: "bye"
        case .forget: "forget"
        case .nameTaken: "nameTaken"
        case .versions: "versions"
        case .eligibility: "eligibility"
        case .stepDown: "stepDown"
        case .stepDownAnswer: "stepDownAnswer"
        case .handover: "handover"
        case .left: "left"
        }
    }
}
