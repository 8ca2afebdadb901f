/// What a node knows of one peer process: its identity, its link and its liveness.
struct Peer: Sendable {
    var identity: NodeIdentity
    var linkUp: Bool
    var lost: Bool
    /// The peer's process is proven gone (a refused dial to its port): a new process with its
    /// name may take its place at once.
    var gone = false
    var lastHeard: Instant
    /// The last heartbeat counter received from this peer (echoed back in ours).
    var receivedSequence: UInt64 = 0
    /// When we sent the heartbeat this peer last acknowledged while following us.
    var acknowledgedAt: Instant? = nil
    /// The last of our heartbeat counters this peer echoed, whoever it followed.
    var echoed: UInt64 = 0
    var following: MasterClaim? = nil
    var membership: MembershipStamp = .bootstrap
    /// The last list this peer sent us (its own): which cluster it holds.
    var list: MembershipList? = nil
    /// What this process of the peer said it left (`left`), kept: a list of that cluster this
    /// node takes later counts it out as well (see `recallDepartures`).
    var departure: Departure? = nil
    /// The newest membership list we sent it, so it is not sent again every heartbeat.
    var membershipSent: MembershipStamp? = nil
    var reconnectAt: Instant
    var reconnectDelay: Duration
    /// Whether a frame has arrived on the current link (a link closed before any did, such
    /// as one a peer refuses, is dialled again with back-off, not probed).
    var heardOnLink = false
    /// The protocol version of the link: the highest both sides speak (a peer that has not
    /// said which it speaks speaks version 1).
    var protocolVersion: UInt8 = WireFormat.lowestVersion
    /// What the peer last said of its eligibility (protocol 3; nil: nothing yet).
    var eligibility: Eligibility? = nil
    /// When this process of the peer was first heard, when it was last heard again after
    /// being lost, and when it last turned eligible (see QuorumInstance+Preferences.swift).
    let firstHeard: Instant
    var aliveSince: Instant
    var eligibleSince: Instant? = nil
    /// It stepped aside (a planned handover, or it lost its eligibility): from then on it takes
    /// the role from a working master only by a higher priority, never by the metric (until it
    /// is master again).
    var handedOver = false
    /// Whether our eligibility went out on this link after the peer was heard on it (a frame
    /// sent before the peer took the link may be lost).
    var eligibilitySent = false

    init(_ identity: NodeIdentity, linkUp: Bool, now: Instant, timing: Timing) {
        self.identity = identity
        self.linkUp = linkUp
        lost = !linkUp
        lastHeard = now
        firstHeard = now
        aliveSince = now
        reconnectAt = now
        reconnectDelay = timing.reconnectMinimum
    }

    var name: String { identity.name }
}

/// The peer table: every peer process this node knows, keyed by name (a name stands for one
/// process at a time; see `QuorumInstance.onLinkUp` for who holds a name), the nodes that
/// left, and the dials in progress. Liveness is judged here and nowhere else.
struct PeerTable: Sendable {
    private(set) var byName: [String: Peer] = [:]
    /// Nodes that said goodbye (or were forgotten), shown as `dispatched` until they re-enter.
    var dispatched: [String: NodeIdentity] = [:]
    /// Dials in progress, by name, since when.
    var connecting: [String: Instant] = [:]
    let timing: Timing
    let capacity: Int

    init(timing: Timing, capacity: Int) {
        self.timing = timing
        self.capacity = capacity
    }

    subscript(name: String) -> Peer? {
        get { byName[name] }
        set { byName[name] = newValue }
    }

    var count: Int { byName.count }
    var isFull: Bool { byName.count >= capacity }
    var names: Dictionary<String, Peer>.Keys { byName.keys }

    /// Heard within the election timeout and not marked lost.
    func isAlive(_ p: Peer, now: Instant) -> Bool {
        !p.lost && now - p.lastHeard < timing.electionTimeout
    }

    func isAlive(_ name: String, now: Instant) -> Bool {
        byName[name].map { isAlive($0, now: now) } ?? false
    }

    /// Peers in name order, so that the directives of one event come out in the same order
    /// on every run (dictionary order is randomised per process).
    var ordered: [Peer] {
        byName.values.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    func alive(now: Instant) -> [Peer] { ordered.filter { isAlive($0, now: now) } }

    var linkedCount: Int { byName.values.filter(\.linkUp).count }

    /// Marks peers silent for the election timeout as lost; returns their names.
    mutating func markSilent(now: Instant) -> [String] {
        var names: [String] = []
        for p in ordered where !p.lost && now - p.lastHeard >= timing.electionTimeout {
            byName[p.name]?.lost = true
            names.append(p.name)
        }
        return names
    }

    /// The peers to dial now (link down, back-off over, no dial in progress), with the
    /// back-off advanced.
    mutating func dueForReconnect(now: Instant) -> [NodeIdentity] {
        var due: [NodeIdentity] = []
        for p in ordered where !p.linkUp && now >= p.reconnectAt {
            if let since = connecting[p.name], now - since < timing.reconnectMaximum { continue }
            connecting[p.name] = now
            byName[p.name]?.reconnectAt = now + p.reconnectDelay
            byName[p.name]?.reconnectDelay = min(p.reconnectDelay * 2, timing.reconnectMaximum)
            due.append(p.identity)
        }
        return due
    }

    /// `true` when a dial to `name` started less than the longest back-off ago.
    func isDialling(_ name: String, now: Instant) -> Bool {
        connecting[name].map { now - $0 < timing.reconnectMaximum } ?? false
    }

    @discardableResult
    mutating func remove(_ name: String) -> Peer? { byName.removeValue(forKey: name) }

    /// The earliest instant at which something here changes by itself.
    func nextChange(after now: Instant) -> Instant? {
        var t: Instant? = nil
        func consider(_ x: Instant) { if x > now { t = min(t ?? x, x) } }
        for p in byName.values {
            if !p.lost { consider(p.lastHeard + timing.electionTimeout) }
            if !p.linkUp { consider(p.reconnectAt) }
        }
        return t
    }
}
