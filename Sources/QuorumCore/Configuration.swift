/// What a node does when it finds itself in a minority.
public enum QuorumLossPolicy: String, Sendable, CaseIterable {
    /// Stay up with role `no-quorum` and rejoin when the partition heals (the default).
    case wait
    /// Leave the cluster and end the process with status 3 (the original's behaviour).
    case dispatch
}

/// The timing parameters of the protocol. See docs/protocol.md for why these defaults.
///
/// Safety needs `leaseDuration + maximum clock-rate skew < electionTimeout`: a master's lease
/// is measured from when it *sent* a heartbeat, a voter's promise from when it *received* it.
public struct Timing: Sendable, Equatable {
    /// How often every node sends a heartbeat to every connected peer.
    public var heartbeatInterval: Duration = .milliseconds(100)
    /// How long a master keeps its role after the last heartbeat a majority acknowledged.
    public var leaseDuration: Duration = .milliseconds(400)
    /// How long a voter refuses other candidates after hearing a live master, and how long
    /// a silent peer stays `connected` before it is marked `lost`.
    public var electionTimeout: Duration = .milliseconds(600)
    /// How long a starting node listens for an existing cluster before it may elect.
    public var discoveryWindow: Duration = .milliseconds(800)
    /// Delays between the first announcements of a starting node, then the steady rate.
    public var announceBackoff: [Duration] = [.zero, .milliseconds(20), .milliseconds(60), .milliseconds(140), .milliseconds(300), .milliseconds(600)]
    public var announceInterval: Duration = .seconds(2)
    /// How long a candidate waits for votes before it tries again.
    public var candidacyTimeout: Duration = .milliseconds(800)
    /// The random pause after a failed candidacy, so duelling candidates do not livelock.
    public var candidacyBackoff: ClosedRange<Int64> = 20...120  // milliseconds
    /// Reconnect attempts to known peers whose link is down: first after `reconnectMinimum`,
    /// doubling up to `reconnectMaximum` (so a healed partition is whole again within 2 s).
    public var reconnectMinimum: Duration = .milliseconds(50)
    public var reconnectMaximum: Duration = .milliseconds(500)
    /// How long the shell waits for a connection attempt before it counts as unreachable. A
    /// lost SYN is sent again by the kernel only after 1 s, so a fresh attempt is quicker.
    public var connectTimeout: Duration = .milliseconds(500)
    /// How long a link may hold data its peer has not acknowledged before the kernel aborts
    /// it (the shell sets it as `TCP_USER_TIMEOUT`). A partition stops acknowledgements, so
    /// the link ends soon after and is dialled anew when the partition heals, instead of
    /// waiting for TCP's retransmission back-off (0.2, 0.6, 1.4, 3 s …). A paused peer's
    /// kernel still acknowledges, so a pause does not end its links.
    public var linkTimeout: Duration = .seconds(1)
    /// A process refused because a live member holds its name exits (status 2) when this
    /// young, or when no peer has accepted it yet; an older one only logs.
    public var duplicateNameWindow: Duration = .seconds(5)

    public init() {}

    /// `true` when the lease is safely shorter than a voter's promise.
    public var isSafe: Bool {
        leaseDuration < electionTimeout && heartbeatInterval < leaseDuration
    }
}

/// Everything the core needs to know about its configuration.
public struct CoreConfiguration: Sendable {
    public var cluster: String
    public var metric: Metric = .age
    public var onQuorumLoss: QuorumLossPolicy = .wait
    /// No master until this many nodes (self included) have been seen. `nil`: off.
    public var expectedNodes: Int? = nil
    /// In an exact half split, the half holding the best member by the metric keeps quorum.
    public var tieBreaker: Bool = false
    /// The most peers a node keeps in its table; further newcomers are refused.
    public var maximumPeers: Int = 256
    public var timing = Timing()
    /// The highest protocol version this node speaks: `WireFormat.version`, lower only to
    /// stand in for an older build in tests.
    public var protocolVersion: UInt8 = WireFormat.version
    /// This node's priority, preemption, standby, health and witness at start (see
    /// Eligibility.swift); later changes arrive as `Event.eligibilityChanged`.
    public var eligibility = Eligibility()
    /// Test only: bring back one fixed hole, to prove the simulator finds it. `nil` in every
    /// real node.
    public var plantedHole: PlantedHole? = nil

    public init(cluster: String) { self.cluster = cluster }
}

/// The split-brain holes closed in the core (docs/protocol.md, "Holes closed"), each of
/// which the simulator must find when it is planted back. Test only.
public enum PlantedHole: String, Sendable, CaseIterable {
    /// 1: the tie-breaker counts over a list not yet known to a quorum (no joint quorums).
    case tieBreakerDuringChange = "tie-breaker-during-change"
    /// 2: a new master changes membership before its own list is on a quorum.
    case changeBeforeOwnList = "change-before-own-list"
    /// 3: a second process with a member's name replaces the member's entry.
    case duplicateNames = "duplicate-names"
    /// 4: a node without state starts from epoch 0 and votes in any epoch.
    case lostStateEpoch = "lost-state-epoch"
    /// 5: the node's clock stops while its host is suspended (`CLOCK_MONOTONIC`). A shell's hole:
    /// the simulator plants it by stopping a suspended node's clock.
    case stoppedClock = "stopped-clock"
    /// 6: queued hooks start however stale (a shell's hole: the simulator skips the gate).
    case staleMasterHook = "stale-master-hook"
    /// 7: the names seen for `--expected-nodes` are forgotten on restart.
    case expectedNodesForgotten = "expected-nodes-forgotten"
    /// 8: the lease ignores the tie-breaker when the other half acknowledged earlier.
    case tieBreakerBlink = "tie-breaker-blink"
    /// 9: the tie-breaker's half holds the best member by the metric over the identities each
    /// node knows, which a restart changes, instead of the list's first member.
    case tieBreakerBestByMetric = "tie-breaker-metric"
    /// 10: a node that leaves keeps no record of the list it left, so its next start counts in
    /// an older list of that cluster, held by a member that never heard the goodbye.
    case leftListRecounted = "left-list-recounted"
    /// 11: a node that was not running during its discovery window (its first write stalled)
    /// ends the window on waking, before the frames and link events queued meanwhile.
    case stalledDiscovery = "stalled-discovery"
}
