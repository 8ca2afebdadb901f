/// A node's answer to `status`: its own view of the cluster.
///
/// The JSON keys are stable camelCase and every key is always present; an unknown value is
/// `null` (never a missing key), so tools can rely on the shape. The fields named by the
/// interface (`name` … `metric`) are required when decoding; the extras are optional, so a
/// client can read a node that does not fill them.
public struct StatusReport: Codable, Equatable, Sendable {
    /// This node's name.
    public var name: String
    /// The cluster name it belongs to.
    public var cluster: String
    /// `discovering`, `master`, `slave`, `no-quorum`, `dispatched`, or `witness`.
    public var role: String
    /// The master's name, `nil` (JSON `null`) when there is none.
    public var master: String?
    /// Whether this node is in a partition holding a majority.
    public var quorate: Bool
    /// Grows with every change of master, never reused.
    public var epoch: UInt64
    /// Self + connected + lost.
    public var clusterSize: Int
    /// How many nodes make a majority of `clusterSize`.
    public var majority: Int
    /// Peers currently connected.
    public var connected: Int
    /// Peers lost (still counted toward the majority until they re-enter or are forgotten).
    public var lost: Int
    /// `"age"` or `"port"`.
    public var metric: String

    // Extras beyond the interface's minimum.

    /// Where the master listens, `host:port`, when known.
    public var masterAddress: String?
    /// The address this node advertises to peers.
    public var address: String?
    /// The TCP port this node listens on for peers.
    public var port: Int?
    /// This node's birth time, milliseconds since the Unix epoch.
    public var birth: Int64?
    /// This process's random instance id, as lowercase hex.
    public var instance: String?
    /// Seconds since this process started.
    public var uptimeSeconds: Int64?
    /// Peers that left gracefully and are still listed.
    public var dispatched: Int?
    /// The highest protocol version this node speaks.
    public var protocolVersion: Int?
    /// The version every member speaks: lower than `protocolVersion` while a member runs an
    /// older build (or has not been heard since this node started).
    public var clusterProtocolVersion: Int?
    /// The members that hold the cluster's version below this node's, by name.
    public var protocolBehind: [String]?
    /// The `--peer` entries and how each is doing, in the order given.
    public var seeds: [SeedReport]?
    /// Whether broadcast (or multicast) discovery is on (`--broadcast-address none`: off).
    public var broadcastDiscovery: Bool?
    /// What the operator should fix (for example seeds without a cluster key).
    public var warnings: [String]?
    /// Why there is no master (`no-quorum`, `expected-nodes-not-seen`, `not-admitted`,
    /// `handover`, `electing`, `dispatched`, `no-eligible-member`, `features-inactive`);
    /// `null` when there is one.
    public var noMasterReason: String?
    /// Whether this node may be master now, and why not (`witness`, `priority-0`, `standby`,
    /// `check-failing`, `check-unknown`; empty when it may).
    public var eligible: Bool?
    public var ineligibleReasons: [String]?
    /// `--priority` (0: never master).
    public var priority: Int?
    /// Whether this node is a witness (`--witness`).
    public var witness: Bool?
    /// A member of higher priority waiting to take over: `C (priority 200) takes over in 7s`.
    public var preemption: String?
    /// `quorumctl standby`: on or off, since when, and whether it outlives a restart.
    public var standby: StandbyReport?
    /// The health check (`--check`), when one is configured.
    public var check: CheckReport?

    public init(
        name: String, cluster: String, role: String, master: String?, quorate: Bool, epoch: UInt64,
        clusterSize: Int, majority: Int, connected: Int, lost: Int, metric: String,
        masterAddress: String? = nil, address: String? = nil, port: Int? = nil, birth: Int64? = nil,
        instance: String? = nil, uptimeSeconds: Int64? = nil, dispatched: Int? = nil,
        protocolVersion: Int? = nil, clusterProtocolVersion: Int? = nil, protocolBehind: [String]? = nil,
        seeds: [SeedReport]? = nil, broadcastDiscovery: Bool? = nil, warnings: [String]? = nil,
        noMasterReason: String? = nil, eligible: Bool? = nil, ineligibleReasons: [String]? = nil,
        priority: Int? = nil, witness: Bool? = nil, preemption: String? = nil, standby: StandbyReport? = nil,
        check: CheckReport? = nil
    ) {
        self.name = name
        self.cluster = cluster
        self.role = role
        self.master = master
        self.quorate = quorate
        self.epoch = epoch
        self.clusterSize = clusterSize
        self.majority = majority
        self.connected = connected
        self.lost = lost
        self.metric = metric
        self.masterAddress = masterAddress
        self.address = address
        self.port = port
        self.birth = birth
        self.instance = instance
        self.uptimeSeconds = uptimeSeconds
        self.dispatched = dispatched
        self.protocolVersion = protocolVersion
        self.clusterProtocolVersion = clusterProtocolVersion
        self.protocolBehind = protocolBehind
        self.seeds = seeds
        self.broadcastDiscovery = broadcastDiscovery
        self.warnings = warnings
        self.noMasterReason = noMasterReason
        self.eligible = eligible
        self.ineligibleReasons = ineligibleReasons
        self.priority = priority
        self.witness = witness
        self.preemption = preemption
        self.standby = standby
        self.check = check
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, cluster, role, master, quorate, epoch, clusterSize, majority, connected, lost, metric
        case masterAddress, address, port, birth, instance, uptimeSeconds, dispatched
        case protocolVersion, clusterProtocolVersion, protocolBehind, seeds, broadcastDiscovery, warnings
        case noMasterReason, eligible, ineligibleReasons, priority, witness, preemption, standby, check
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        cluster = try c.decode(String.self, forKey: .cluster)
        role = try c.decode(String.self, forKey: .role)
        master = try c.decodeIfPresent(String.self, forKey: .master)
        quorate = try c.decode(Bool.self, forKey: .quorate)
        epoch = try c.decode(UInt64.self, forKey: .epoch)
        clusterSize = try c.decode(Int.self, forKey: .clusterSize)
        majority = try c.decode(Int.self, forKey: .majority)
        connected = try c.decode(Int.self, forKey: .connected)
        lost = try c.decode(Int.self, forKey: .lost)
        metric = try c.decode(String.self, forKey: .metric)
        masterAddress = try c.decodeIfPresent(String.self, forKey: .masterAddress)
        address = try c.decodeIfPresent(String.self, forKey: .address)
        port = try c.decodeIfPresent(Int.self, forKey: .port)
        birth = try c.decodeIfPresent(Int64.self, forKey: .birth)
        instance = try c.decodeIfPresent(String.self, forKey: .instance)
        uptimeSeconds = try c.decodeIfPresent(Int64.self, forKey: .uptimeSeconds)
        dispatched = try c.decodeIfPresent(Int.self, forKey: .dispatched)
        protocolVersion = try c.decodeIfPresent(Int.self, forKey: .protocolVersion)
        clusterProtocolVersion = try c.decodeIfPresent(Int.self, forKey: .clusterProtocolVersion)
        protocolBehind = try c.decodeIfPresent([String].self, forKey: .protocolBehind)
        seeds = try c.decodeIfPresent([SeedReport].self, forKey: .seeds)
        broadcastDiscovery = try c.decodeIfPresent(Bool.self, forKey: .broadcastDiscovery)
        warnings = try c.decodeIfPresent([String].self, forKey: .warnings)
        noMasterReason = try c.decodeIfPresent(String.self, forKey: .noMasterReason)
        eligible = try c.decodeIfPresent(Bool.self, forKey: .eligible)
        ineligibleReasons = try c.decodeIfPresent([String].self, forKey: .ineligibleReasons)
        priority = try c.decodeIfPresent(Int.self, forKey: .priority)
        witness = try c.decodeIfPresent(Bool.self, forKey: .witness)
        preemption = try c.decodeIfPresent(String.self, forKey: .preemption)
        standby = try c.decodeIfPresent(StandbyReport.self, forKey: .standby)
        check = try c.decodeIfPresent(CheckReport.self, forKey: .check)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(cluster, forKey: .cluster)
        try c.encode(role, forKey: .role)
        try c.encodeOrNull(master, forKey: .master)
        try c.encode(quorate, forKey: .quorate)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(clusterSize, forKey: .clusterSize)
        try c.encode(majority, forKey: .majority)
        try c.encode(connected, forKey: .connected)
        try c.encode(lost, forKey: .lost)
        try c.encode(metric, forKey: .metric)
        try c.encodeOrNull(masterAddress, forKey: .masterAddress)
        try c.encodeOrNull(address, forKey: .address)
        try c.encodeOrNull(port, forKey: .port)
        try c.encodeOrNull(birth, forKey: .birth)
        try c.encodeOrNull(instance, forKey: .instance)
        try c.encodeOrNull(uptimeSeconds, forKey: .uptimeSeconds)
        try c.encodeOrNull(dispatched, forKey: .dispatched)
        try c.encodeOrNull(protocolVersion, forKey: .protocolVersion)
        try c.encodeOrNull(clusterProtocolVersion, forKey: .clusterProtocolVersion)
        try c.encodeOrNull(protocolBehind, forKey: .protocolBehind)
        try c.encodeOrNull(seeds, forKey: .seeds)
        try c.encodeOrNull(broadcastDiscovery, forKey: .broadcastDiscovery)
        try c.encodeOrNull(warnings, forKey: .warnings)
        try c.encodeOrNull(noMasterReason, forKey: .noMasterReason)
        try c.encodeOrNull(eligible, forKey: .eligible)
        try c.encodeOrNull(ineligibleReasons, forKey: .ineligibleReasons)
        try c.encodeOrNull(priority, forKey: .priority)
        try c.encodeOrNull(witness, forKey: .witness)
        try c.encodeOrNull(preemption, forKey: .preemption)
        try c.encodeOrNull(standby, forKey: .standby)
        try c.encodeOrNull(check, forKey: .check)
    }
}

/// One other node in a node's answer to `peers`. Keys are always present; unknown values are `null`.
public struct PeerReport: Codable, Equatable, Sendable {
    /// How this node sees the peer: the `state` key's values (the core's
    /// `QuorumInstance.PeerState`, as it is written in the JSON).
    public enum State: String, Codable, Sendable, CaseIterable {
        case connected
        case lost
        case dispatched
    }

    public var name: String
    /// The address the peer advertised.
    public var address: String
    /// The TCP port the peer listens on.
    public var port: Int
    public var state: State
    /// The peer's birth time, milliseconds since the Unix epoch.
    public var birth: Int64
    /// The peer's instance id, lowercase hex.
    public var instance: String?
    /// Milliseconds since anything was last heard from the peer, when known.
    public var lastHeardMillisecondsAgo: Int64?
    /// The protocol version of the link to the peer, when it was linked since this node started.
    public var protocolVersion: Int?
    /// What the peer last said of itself (protocol 3): whether it may be master, its
    /// priority, its check's verdict (null without a check) and its standby.
    public var eligible: Bool?
    public var priority: Int?
    public var healthy: Bool?
    public var standby: Bool?
    public var witness: Bool?

    public init(
        name: String, address: String, port: Int, state: State, birth: Int64,
        instance: String? = nil, lastHeardMillisecondsAgo: Int64? = nil, protocolVersion: Int? = nil,
        eligible: Bool? = nil, priority: Int? = nil, healthy: Bool? = nil, standby: Bool? = nil, witness: Bool? = nil
    ) {
        self.eligible = eligible
        self.priority = priority
        self.healthy = healthy
        self.standby = standby
        self.witness = witness
        self.name = name
        self.address = address
        self.port = port
        self.state = state
        self.birth = birth
        self.instance = instance
        self.lastHeardMillisecondsAgo = lastHeardMillisecondsAgo
        self.protocolVersion = protocolVersion
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, address, port, state, birth, instance, lastHeardMillisecondsAgo, protocolVersion
        case eligible, priority, healthy, standby, witness
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        address = try c.decode(String.self, forKey: .address)
        port = try c.decode(Int.self, forKey: .port)
        state = try c.decode(State.self, forKey: .state)
        birth = try c.decode(Int64.self, forKey: .birth)
        instance = try c.decodeIfPresent(String.self, forKey: .instance)
        lastHeardMillisecondsAgo = try c.decodeIfPresent(Int64.self, forKey: .lastHeardMillisecondsAgo)
        protocolVersion = try c.decodeIfPresent(Int.self, forKey: .protocolVersion)
        eligible = try c.decodeIfPresent(Bool.self, forKey: .eligible)
        priority = try c.decodeIfPresent(Int.self, forKey: .priority)
        healthy = try c.decodeIfPresent(Bool.self, forKey: .healthy)
        standby = try c.decodeIfPresent(Bool.self, forKey: .standby)
        witness = try c.decodeIfPresent(Bool.self, forKey: .witness)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(address, forKey: .address)
        try c.encode(port, forKey: .port)
        try c.encode(state, forKey: .state)
        try c.encode(birth, forKey: .birth)
        try c.encodeOrNull(instance, forKey: .instance)
        try c.encodeOrNull(lastHeardMillisecondsAgo, forKey: .lastHeardMillisecondsAgo)
        try c.encodeOrNull(protocolVersion, forKey: .protocolVersion)
        try c.encodeOrNull(eligible, forKey: .eligible)
        try c.encodeOrNull(priority, forKey: .priority)
        try c.encodeOrNull(healthy, forKey: .healthy)
        try c.encodeOrNull(standby, forKey: .standby)
        try c.encodeOrNull(witness, forKey: .witness)
    }
}

/// One `--peer` entry in a node's answer to `status`: what it resolved to and how dialling
/// it goes. Keys are always present; unknown values are `null`.
public struct SeedReport: Codable, Equatable, Sendable {
    /// The entry as given (`db3.example:6170`).
    public var spec: String
    /// What it last resolved to, `host:port` (`[v6]:port`).
    public var addresses: [String]
    /// `connected`, `connecting`, `refused`, `unreachable`, `resolving`, `unresolved` or
    /// `self` (it leads back to this node, and is skipped).
    public var state: String
    /// The node it reached last, by name.
    public var peer: String?
    /// Why the last resolution or dial failed.
    public var lastError: String?
    /// When it was last resolved, milliseconds since the Unix epoch.
    public var lastResolvedMilliseconds: Int64?

    public init(spec: String, addresses: [String], state: String, peer: String?, lastError: String?, lastResolvedMilliseconds: Int64?) {
        self.spec = spec
        self.addresses = addresses
        self.state = state
        self.peer = peer
        self.lastError = lastError
        self.lastResolvedMilliseconds = lastResolvedMilliseconds
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case spec, addresses, state, peer, lastError, lastResolvedMilliseconds
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(spec, forKey: .spec)
        try c.encode(addresses, forKey: .addresses)
        try c.encode(state, forKey: .state)
        try c.encodeOrNull(peer, forKey: .peer)
        try c.encodeOrNull(lastError, forKey: .lastError)
        try c.encodeOrNull(lastResolvedMilliseconds, forKey: .lastResolvedMilliseconds)
    }
}

extension KeyedEncodingContainer {
    /// Writes the value, or an explicit `null` for `nil` (synthesised Codable would drop the key).
    mutating func encodeOrNull<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
}
