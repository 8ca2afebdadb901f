/// The election state machine of one node: membership, votes, leases and roles.
///
/// It is a value type with no I/O and no clock. Every input is a call to
/// ``handle(_:now:)`` with the current monotonic instant; every output is a list of
/// ``Directive``s for the shell to carry out in order. The algorithm, its guarantees and
/// what it does not guarantee are in docs/protocol.md. In short:
///
/// - The wanted master is the best *alive member* by the metric. Only it campaigns, and a
///   voter grants its vote only to its own wanted master, at most once per epoch (persisted
///   before the reply), and only to a candidate whose membership is at least as new as its own.
/// - A master needs the votes of a strict majority of the membership (self + connected +
///   lost), then keeps its role only while a majority acknowledged a heartbeat it sent within
///   `leaseDuration` (its lease). A voter that hears a master promises not to vote for anyone
///   else for `electionTimeout` after it received that heartbeat; the promise is longer than
///   the lease, so an old master's lease has always ended before a new one can be elected.
/// - A master that steps down keeps telling its peers it still "holds" its epoch until its
///   slave hook has finished; only then do they release their promise. A graceful goodbye, or
///   proof that the master's process is gone (its port refuses connections), releases it at once.
/// - Membership changes are made by the master, one admission at a time, and carry an
///   `(epoch, version)` stamp; nodes adopt newer stamps from anyone.
public struct QuorumInstance: Sendable {
    // MARK: Configuration and identity

    public let configuration: CoreConfiguration
    public let identity: NodeIdentity
    private var timing: Timing { configuration.timing }
    private var name: String { identity.name }

    // MARK: Durable state

    public private(set) var persistent: PersistentState
    private var membership: MembershipConfiguration

    // MARK: Volatile state

    struct Peer: Sendable {
        var identity: NodeIdentity
        var linkUp: Bool
        var lost: Bool
        var lastHeard: Instant
        /// The last heartbeat counter received from this peer (echoed back in ours).
        var receivedSequence: UInt64 = 0
        /// When we sent the heartbeat this peer last acknowledged while following us.
        var acknowledgedAt: Instant? = nil
        /// The last of our heartbeat counters this peer echoed, whoever it followed.
        var echoed: UInt64 = 0
        var following: MasterClaim? = nil
        var configuration: ConfigurationStamp = .bootstrap
        /// The newest configuration we sent it, so it is not sent again every heartbeat.
        var configurationSent: ConfigurationStamp? = nil
        var reconnectAt: Instant
        var reconnectDelay: Duration
    }

    struct Promise: Sendable, Equatable {
        var name: String
        var instance: UInt64
        var epoch: UInt64
        var until: Instant
        /// `true` once the promised node was heard holding its epoch as master.
        var isMaster: Bool
    }

    struct Candidacy: Sendable {
        var epoch: UInt64
        var startedAt: Instant
        var deadline: Instant
        var votes: Set<String>
        var refusals: Set<String>
    }

    struct Mastership: Sendable {
        var epoch: UInt64
        /// The configuration stamp of the admission still waiting for a majority, if any.
        var admissionInFlight: ConfigurationStamp?
        /// The members before that admission.
        var previousMembers: [MemberEntry]? = nil
        /// When the vote requests of the election were sent.
        var requestedAt: Instant
    }

    enum Afterwards: Sendable, Equatable {
        case follow
        case leave(code: Int32)
    }

    struct Resignation: Sendable {
        var epoch: UInt64
        var hook: UInt64
        var then: Afterwards
    }

    enum State: Sendable {
        case follower
        case candidate(Candidacy)
        case master(Mastership)
        case resigning(Resignation)
        case dispatched
    }

    private var state: State = .follower
    private var peers: [String: Peer] = [:]
    private var dispatchedPeers: [String: NodeIdentity] = [:]
    /// Names that said goodbye (their instance) or were forgotten (0), not counted until they re-enter.
    private var departed: [String: UInt64] = [:]
    private var connecting: [String: Instant] = [:]
    private var promise: Promise?
    private var pendingVote: (name: String, epoch: UInt64, stamp: ConfigurationStamp)?
    private var highestEpoch: UInt64
    /// The epoch of the last master this node knew (its own included): the fencing number.
    private var masterEpoch: UInt64 = 0
    private var lastAnnouncedMaster: MasterClaim?
    public private(set) var role: Role = .discovering
    private let startedAt: Instant
    private var started = false
    private var knowsCluster = false
    /// The highest epoch this node had seen before this start, and whether it has since heard
    /// a master of a newer one (see voteDecision).
    private let restoredEpoch: UInt64
    private var heardNewerMaster = false
    private var announceCount = 0
    private var nextAnnounce: Instant
    private var nextHeartbeat: Instant
    private var sequence: UInt64 = 0
    private var sentAt: [UInt64: Instant] = [:]
    private var nextHookID: UInt64 = 1
    private var candidacyNotBefore: Instant
    private var seenNames: Set<String>
    private var random: SplitMix64

    // MARK: Init

    /// - Parameters:
    ///   - identity: this start's identity (a fresh `instance`, the birth of this start).
    ///   - restored: the state persisted by an earlier start of the same node, if any.
    ///   - now: the current monotonic instant.
    ///   - seed: seeds the generator for the random back-off of failed candidacies.
    public init(configuration: CoreConfiguration, identity: NodeIdentity, restored: PersistentState?, now: Instant, seed: UInt64) {
        self.configuration = configuration
        self.identity = identity
        var persistent = restored ?? PersistentState()
        if var c = persistent.configuration {
            // Count ourselves by name with this start's identity.
            if let i = c.members.firstIndex(where: { $0.name == identity.name }) { c.members[i] = identity }
            persistent.configuration = c
            membership = c
        } else {
            membership = MembershipConfiguration(epoch: 0, version: 0, members: [identity])
        }
        self.persistent = persistent
        highestEpoch = max(persistent.highestEpoch, persistent.votedEpoch)
        restoredEpoch = highestEpoch
        masterEpoch = persistent.configuration?.epoch ?? 0
        startedAt = now
        nextAnnounce = now
        nextHeartbeat = now
        candidacyNotBefore = now
        seenNames = [identity.name]
        random = SplitMix64(seed: seed)
    }

    // MARK: Queries

    /// `true` while this node is master *and* its lease has not ended at `now`.
    public func isMaster(now: Instant) -> Bool {
        guard case .master = state else { return false }
        return now < leaseEnd(now: now)
    }

    /// `true` when the shell may start this queued hook now: a master hook only while this
    /// node is master of the hook's epoch within its lease.
    public func mayStartHook(_ run: HookRun, now: Instant) -> Bool {
        guard run.role == .master else { return true }
        return isMaster(now: now) && heldEpoch == run.epoch
    }

    /// The epoch this node holds as master (or is stepping down from), if any.
    public var heldEpoch: UInt64? {
        switch state {
        case .master(let m): m.epoch
        case .resigning(let r): r.epoch
        default: nil
        }
    }

    /// The master this node follows or is, if any.
    public func currentMaster(now: Instant) -> MasterClaim? {
        if case .master(let m) = state { return MasterClaim(name: name, instance: identity.instance, epoch: m.epoch) }
        if let p = promise, p.isMaster, p.until > now {
            return MasterClaim(name: p.name, instance: p.instance, epoch: p.epoch)
        }
        return nil
    }

    public var isMember: Bool { members.contains { $0.name == name } }
    public var membershipStamp: ConfigurationStamp { membership.stamp }
    public var memberNames: [String] { members.map(\.name) }

    public struct Status: Sendable, Equatable {
        public var identity: NodeIdentity
        public var cluster: String
        public var role: Role
        public var master: String?
        public var masterIdentity: NodeIdentity?
        public var quorate: Bool
        public var epoch: UInt64
        public var clusterSize: Int
        public var majority: Int
        public var connected: Int
        public var lost: Int
        public var metric: Metric
        public var isMember: Bool
        public var membership: ConfigurationStamp
    }

    public enum PeerState: String, Sendable, Equatable {
        case connected, lost, dispatched
    }

    public struct PeerStatus: Sendable, Equatable {
        public var identity: NodeIdentity
        public var state: PeerState
        public var isMember: Bool
        /// Time since the peer was last heard, if it was heard in this process's life.
        public var silence: Duration?
    }

    /// A snapshot for `quorumctl status`. Call `handle(.tick, now:)` first so that an ended
    /// lease or a silent peer is accounted for.
    public func status(now: Instant) -> Status {
        let q = quorum(now: now)
        let master = currentMaster(now: now)
        let masterIdentity: NodeIdentity? = master.flatMap { m in
            m.name == name ? identity : peers[m.name]?.identity
        }
        let connectedCount = peers.values.filter { alive($0, now: now) }.count
        // Lost: members not alive, heard from in this process's life or known only from the membership.
        let lostCount = members.filter { m in m.name != name && !(peers[m.name].map { alive($0, now: now) } ?? false) }.count
        return Status(
            identity: identity, cluster: configuration.cluster, role: role, master: master?.name,
            masterIdentity: masterIdentity, quorate: q.quorate, epoch: masterEpoch, clusterSize: q.size,
            majority: q.size / 2 + 1, connected: connectedCount, lost: lostCount, metric: configuration.metric,
            isMember: isMember, membership: membership.stamp)
    }

    public func peerStatuses(now: Instant) -> [PeerStatus] {
        var result: [PeerStatus] = peers.values.map { p in
            PeerStatus(identity: p.identity, state: alive(p, now: now) ? .connected : .lost,
                       isMember: isMember(p.identity.name), silence: now - p.lastHeard)
        }
        // Members we know only from the configuration (never heard in this process's life).
        for m in members where m.name != name && peers[m.name] == nil {
            result.append(PeerStatus(identity: m, state: .lost, isMember: true, silence: nil))
        }
        for d in dispatchedPeers.values where peers[d.name] == nil {
            result.append(PeerStatus(identity: d, state: .dispatched, isMember: false, silence: nil))
        }
        return result.sorted { $0.identity.name.utf8.lexicographicallyPrecedes($1.identity.name.utf8) }
    }

    /// A one-line summary of the internal state, for traces and debugging.
    public func debugSummary(now: Instant) -> String {
        let stateText: String
        switch state {
        case .follower: stateText = "follower"
        case .candidate(let c): stateText = "candidate(\(c.epoch), votes \(c.votes.sorted()), refusals \(c.refusals.sorted()))"
        case .master(let m): stateText = "master(\(m.epoch), lease until \(leaseEnd(now: now)))"
        case .resigning(let r): stateText = "resigning(\(r.epoch), hook \(r.hook), \(r.then))"
        case .dispatched: stateText = "dispatched"
        }
        let promiseText = promise.map { "\($0.name)@\($0.epoch) until \($0.until)\($0.isMaster ? " master" : "")" } ?? "none"
        let alivePeers = orderedPeers.filter { alive($0, now: now) }.map(\.identity.name)
        return "\(name) \(role.rawValue) \(stateText) promise=\(promiseText) pending=\(pendingVote.map { "\($0.name)@\($0.epoch)" } ?? "none") voted=\(persistent.votedFor ?? "-")@\(persistent.votedEpoch) membership=\(membership.stamp)\(members.map(\.name)) alive=\(alivePeers) wanted=\(wanted(now: now)?.name ?? "none")"
    }

    // MARK: Events

    /// Feeds one event and returns what the shell must do, in order.
    public mutating func handle(_ event: Event, now: Instant) -> [Directive] {
        var out: [Directive] = []
        if case .dispatched = state { return out }
        if !started {
            started = true
            out.append(.persist(persistent))
        }
        switch event {
        case .tick:
            break
        case .datagram(let announce):
            onAnnounce(announce, now: now, into: &out)
        case .linkUp(let peer):
            onLinkUp(peer, now: now, into: &out)
        case .linkDown(let peerName, let instance, let loss):
            onLinkDown(peerName, instance: instance, loss: loss, now: now, into: &out)
        case .message(let message, let from):
            onMessage(message, from: from, now: now, into: &out)
        case .hookFinished(let id):
            onHookFinished(id, now: now, into: &out)
        case .leaveRequested:
            leave(code: 0, cause: .leaving, now: now, into: &out)
        case .forgetRequested(let peerName):
            let outcome = forgetLocally(peerName, now: now, into: &out)
            if outcome == .forgotten, let m = currentMaster(now: now), m.name != name {
                out.append(.send(.forget(name: peerName), to: m.name))
            }
            out.append(.forgetAnswered(name: peerName, outcome))
        }
        reconcile(now: now, into: &out)
        return out
    }

    // MARK: Discovery and links

    private mutating func onAnnounce(_ a: Announce, now: Instant, into out: inout [Directive]) {
        guard a.cluster == configuration.cluster else { return }
        let id = a.identity
        if id.name == name {
            if id.instance != identity.instance { out.append(.notice(.duplicateName(address: id.address, port: id.port))) }
            return
        }
        if let p = peers[id.name], p.identity.instance == id.instance, p.linkUp { return }
        if peers[id.name] == nil, peers.count >= configuration.maximumPeers {
            out.append(.notice(.peerRefused(name: id.name, reason: "peer table full (\(configuration.maximumPeers))")))
            return
        }
        if let since = connecting[id.name], now - since < timing.reconnectMaximum { return }
        connecting[id.name] = now
        out.append(.connect(id))
    }

    private mutating func onLinkUp(_ id: NodeIdentity, now: Instant, into out: inout [Directive]) {
        connecting[id.name] = nil
        if id.name == name {
            if id.instance != identity.instance { out.append(.notice(.duplicateName(address: id.address, port: id.port))) }
            return
        }
        if peers[id.name] == nil, peers.count >= configuration.maximumPeers {
            out.append(.notice(.peerRefused(name: id.name, reason: "peer table full (\(configuration.maximumPeers))")))
            return
        }
        seenNames.insert(id.name)
        if let gone = departed[id.name], gone != id.instance { departed[id.name] = nil }
        dispatchedPeers.removeValue(forKey: id.name)
        if var p = peers[id.name] {
            if p.identity.instance != id.instance {
                // Re-entry: a new start of a node we knew. If it listens on the same address
                // and port, the old process cannot still be listening there: it is gone.
                let old = p.identity
                out.append(.notice(.peerReentered(name: id.name)))
                if let pr = promise, pr.name == id.name, pr.instance == old.instance,
                   old.address == id.address, old.port == id.port {
                    releasePromise(now: now, into: &out)
                }
                p = newPeer(id, now: now)
            }
            p.identity = id
            p.linkUp = true
            p.lost = false
            p.lastHeard = now
            p.reconnectDelay = timing.reconnectMinimum
            p.configurationSent = nil
            peers[id.name] = p
        } else {
            peers[id.name] = newPeer(id, now: now)
            out.append(.notice(.peerConnected(name: id.name, connected: peers.values.filter { $0.linkUp }.count)))
        }
        updateMemberIdentity(id)
        if membership.stamp == .bootstrap, !isMember(id.name) {
            // Before any master exists, everyone seen counts, also after a restart: a node that
            // has seen others never again starts as a lone cluster of one.
            membership.members.append(id)
            persistent.configuration = membership
            out.append(.persist(persistent))
        }
        // Greet at once: our view of the master and membership reach the newcomer in one round trip.
        sendConfigurationIfNeeded(to: id.name, into: &out)
        out.append(.send(.heartbeat(heartbeat(for: id.name, now: now)), to: id.name))
        askForVoteIfCandidate(id.name, now: now, into: &out)
    }

    /// A member that could not be asked when the candidacy started (no link, or silent) is
    /// asked once it can hear us: after a partition, links come back one by one, and a
    /// candidacy that asked only the first member back would otherwise wait out its deadline.
    private func askForVoteIfCandidate(_ peerName: String, now: Instant, into out: inout [Directive]) {
        guard case .candidate(let c) = state, isMember(peerName),
              !c.votes.contains(peerName), !c.refusals.contains(peerName) else { return }
        requestVote(from: peerName, epoch: c.epoch, now: now, into: &out)
    }

    /// Peers in name order, so that the directives of one event come out in the same order
    /// on every run (dictionary order is randomised per process).
    private var orderedPeers: [Peer] {
        peers.values.sorted { $0.identity.name.utf8.lexicographicallyPrecedes($1.identity.name.utf8) }
    }

    private var orderedPeerPairs: [(String, Peer)] { orderedPeers.map { ($0.identity.name, $0) } }

    private func newPeer(_ id: NodeIdentity, now: Instant) -> Peer {
        Peer(identity: id, linkUp: true, lost: false, lastHeard: now, reconnectAt: now, reconnectDelay: timing.reconnectMinimum)
    }

    private mutating func onLinkDown(_ peerName: String, instance: UInt64, loss: LinkLoss, now: Instant, into out: inout [Directive]) {
        connecting[peerName] = nil
        guard var p = peers[peerName], p.identity.instance == instance else { return }
        p.linkUp = false
        switch loss {
        case .closed:
            // Probe at once: a refused reconnect proves the process is gone. A dying process's
            // listening socket may outlive its links by a moment (the probe is accepted, then
            // reset), so probe again quickly: 2, 4, 8 ms … up to the usual back-off.
            p.reconnectAt = now
            p.reconnectDelay = .milliseconds(2)
        case .refused:
            if !p.lost {
                p.lost = true
                out.append(.notice(.peerLost(name: peerName, evidence: "connection refused")))
            }
            if let pr = promise, pr.name == peerName, pr.instance == instance {
                peers[peerName] = p
                releasePromise(now: now, into: &out)
            }
            fallthrough
        case .unreachable:
            p.reconnectAt = now + p.reconnectDelay
            p.reconnectDelay = min(p.reconnectDelay * 2, timing.reconnectMaximum)
        }
        peers[peerName] = p
        if case .candidate(var c) = state, c.votes.contains(peerName), loss == .refused {
            c.votes.remove(peerName)
            state = .candidate(c)
        }
    }

    // MARK: Messages

    private mutating func onMessage(_ message: Message, from: String, now: Instant, into out: inout [Directive]) {
        guard var p = peers[from], from != name else { return }
        p.lastHeard = now
        p.linkUp = true
        let returned = p.lost
        if p.lost {
            p.lost = false
            out.append(.notice(.peerConnected(name: from, connected: peers.values.filter { $0.linkUp }.count)))
        }
        peers[from] = p
        if returned { askForVoteIfCandidate(from, now: now, into: &out) }
        switch message {
        case .heartbeat(let h):
            onHeartbeat(h, from: from, now: now, into: &out)
        case .voteRequest(let epoch):
            onVoteRequest(epoch: epoch, from: from, stamp: p.configuration, now: now, into: &out)
        case .voteReply(let epoch, let granted):
            onVoteReply(epoch: epoch, granted: granted, from: from, now: now, into: &out)
        case .members(let c):
            adopt(c, now: now, into: &out)
        case .resign(let epoch):
            if let pr = promise, pr.name == from, pr.epoch == epoch { releasePromise(now: now, into: &out) }
        case .bye:
            dispatch(from, now: now, into: &out)
        case .forget(let target):
            if case .master = state { _ = forgetLocally(target, now: now, into: &out) }
        case .announce, .hello, .nameTaken:
            break
        }
    }

    private mutating func onHeartbeat(_ h: Heartbeat, from: String, now: Instant, into out: inout [Directive]) {
        guard var p = peers[from] else { return }
        p.receivedSequence = h.sequence
        p.echoed = h.echo
        p.following = h.following
        p.configuration = h.configuration
        if case .master(let m) = state, let f = h.following, f.name == name, f.instance == identity.instance, f.epoch == m.epoch {
            if let t = sentAt[h.echo] { p.acknowledgedAt = max(p.acknowledgedAt ?? t, t) }
        }
        peers[from] = p
        highestEpoch = max(highestEpoch, h.epoch)

        if let held = h.holding {
            acceptMaster(from, instance: p.identity.instance, epoch: held, now: now, into: &out)
        } else if let pr = promise, pr.isMaster, pr.name == from, pr.instance == p.identity.instance {
            // It no longer holds its epoch: it stepped down and its hook has finished.
            releasePromise(now: now, into: &out)
        }
        // A follower of a newer master tells an old master that it has been replaced.
        if let held = heldEpoch, let f = h.following, f.epoch > held, f.name != name {
            stepDownSuperseded(now: now, into: &out)
        }
        if h.configuration < membership.stamp { sendConfigurationIfNeeded(to: from, into: &out) }
    }

    private mutating func acceptMaster(_ master: String, instance: UInt64, epoch: UInt64, now: Instant, into out: inout [Directive]) {
        guard epoch >= highestEpoch || epoch >= (promise?.epoch ?? 0) else { return }
        if let pr = promise, pr.until > now, pr.epoch > epoch { return }
        if let pr = promise, pr.until > now, pr.epoch == epoch, pr.name != master { return }
        if let held = heldEpoch {
            if held >= epoch { return }  // we hold a newer or the same epoch: the sender will learn
            stepDownSuperseded(now: now, into: &out)
        }
        if case .candidate(let c) = state, c.epoch <= epoch {
            state = .follower
        } else if case .candidate = state {
            return
        }
        highestEpoch = max(highestEpoch, epoch)
        knowsCluster = true
        if epoch > restoredEpoch { heardNewerMaster = true }
        if epoch > persistent.highestEpoch {
            // Remembered across a crash: the epochs this node may have promised its vote in.
            persistent.highestEpoch = epoch
            out.append(.persist(persistent))
        }
        promise = Promise(name: master, instance: instance, epoch: epoch, until: now + timing.electionTimeout, isMaster: true)
        if pendingVote.map({ $0.epoch <= epoch }) == true { pendingVote = nil }
        masterEpoch = max(masterEpoch, epoch)
    }

    private mutating func releasePromise(now: Instant, into out: inout [Directive]) {
        guard let pr = promise else { return }
        promise = nil
        if pr.isMaster { out.append(.notice(.masterGone(previous: pr.name, epoch: pr.epoch))) }
    }

    // MARK: Votes

    private mutating func onVoteRequest(epoch: UInt64, from candidate: String, stamp: ConfigurationStamp, now: Instant, into out: inout [Directive]) {
        highestEpoch = max(highestEpoch, epoch)
        switch voteDecision(candidate: candidate, epoch: epoch, stamp: stamp, now: now) {
        case .grant:
            grant(candidate, epoch: epoch, now: now, into: &out)
        case .defer(let reason):
            if pendingVote == nil || pendingVote!.epoch <= epoch {
                pendingVote = (candidate, epoch, stamp)
                out.append(.notice(.voteDeferred(for: candidate, epoch: epoch, reason: reason)))
            }
        case .refuse(let sendConfiguration):
            out.append(.send(.voteReply(epoch: max(epoch, persistent.votedEpoch, highestEpoch), granted: false), to: candidate))
            if sendConfiguration { sendConfigurationIfNeeded(to: candidate, into: &out) }
        }
    }

    enum VoteDecision: Equatable {
        case grant
        case `defer`(reason: String)
        case refuse(sendConfiguration: Bool)
    }

    private func voteDecision(candidate: String, epoch: UInt64, stamp: ConfigurationStamp, now: Instant) -> VoteDecision {
        guard let c = peers[candidate], alive(c, now: now) else { return .refuse(sendConfiguration: false) }
        if case .dispatched = state { return .refuse(sendConfiguration: false) }
        if heldEpoch != nil { return .refuse(sendConfiguration: false) }
        if case .candidate = state { return .refuse(sendConfiguration: false) }
        if epoch < persistent.votedEpoch { return .refuse(sendConfiguration: false) }
        if epoch == persistent.votedEpoch {
            return persistent.votedFor == candidate ? .grant : .refuse(sendConfiguration: false)
        }
        guard isMember(candidate) else { return .refuse(sendConfiguration: true) }
        if stamp < membership.stamp { return .refuse(sendConfiguration: true) }
        guard expectedNodesSeen else { return .refuse(sendConfiguration: false) }
        // Still promised to a live master (or to another candidate): answer once that ends.
        // The promise and the master's liveness end together when the master falls silent,
        // so the candidate usually waits only for the difference in arrival times.
        if let pr = promise, pr.until > now, pr.name != candidate { return .defer(reason: pr.isMaster ? "it still hears master \(pr.name)" : "it promised \(pr.name) its vote") }
        // A promise made before a crash lives only in memory: a restarted node keeps quiet
        // until any promise its old self made has ended — or until it has heard a master of an
        // epoch newer than any its old self saw: that master was elected without this node's
        // vote, so every lease its old promises backed had ended by then.
        if now < startedAt + timing.electionTimeout && !heardNewerMaster {
            return .defer(reason: "it started less than an election timeout ago")
        }
        guard wanted(now: now)?.name == candidate else { return .refuse(sendConfiguration: false) }
        return .grant
    }

    private mutating func grant(_ candidate: String, epoch: UInt64, now: Instant, into out: inout [Directive]) {
        pendingVote = nil
        if persistent.votedEpoch != epoch || persistent.votedFor != candidate {
            persistent.votedEpoch = epoch
            persistent.votedFor = candidate
            persistent.highestEpoch = max(highestEpoch, epoch)
            out.append(.persist(persistent))
            out.append(.notice(.voted(for: candidate, epoch: epoch)))
        }
        let instance = peers[candidate]?.identity.instance ?? 0
        // The promise that makes leases safe: no other vote for `electionTimeout`.
        promise = Promise(name: candidate, instance: instance, epoch: epoch, until: now + timing.electionTimeout, isMaster: false)
        out.append(.send(.voteReply(epoch: epoch, granted: true), to: candidate))
    }

    private mutating func onVoteReply(epoch: UInt64, granted: Bool, from: String, now: Instant, into out: inout [Directive]) {
        if case .master(let m) = state, granted, epoch == m.epoch, peers[from]?.acknowledgedAt == nil {
            // A vote that arrives after the election was won is still a promise, made after the request.
            let acknowledged = voteAcknowledgement(from: from, requestedAt: m.requestedAt)
            peers[from]?.acknowledgedAt = acknowledged
            return
        }
        guard case .candidate(var c) = state else {
            highestEpoch = max(highestEpoch, epoch)
            return
        }
        if granted, epoch == c.epoch {
            c.votes.insert(from)
            let acknowledged = voteAcknowledgement(from: from, requestedAt: c.startedAt)
            peers[from]?.acknowledgedAt = acknowledged
        } else if !granted {
            highestEpoch = max(highestEpoch, epoch)
            c.refusals.insert(from)
        }
        state = .candidate(c)
    }

    /// What a granted vote proves for the lease: the voter promised from the moment it
    /// granted, which is after our request went out and after it received every heartbeat it
    /// echoed before its reply (frames on a link arrive in order). A vote held back by an
    /// older promise is granted long after the request; the echo keeps the lease fresh then.
    private func voteAcknowledgement(from peer: String, requestedAt: Instant) -> Instant {
        guard let echoed = peers[peer]?.echoed, let sent = sentAt[echoed] else { return requestedAt }
        return max(requestedAt, sent)
    }

    private mutating func startCandidacy(now: Instant, into out: inout [Directive]) {
        let epoch = max(highestEpoch, persistent.votedEpoch) + 1
        highestEpoch = epoch
        persistent.votedEpoch = epoch
        persistent.votedFor = name
        persistent.highestEpoch = epoch
        out.append(.persist(persistent))
        // A new term: only this candidacy's votes (and later heartbeats) back its lease.
        for peerName in peers.keys { peers[peerName]?.acknowledgedAt = nil }
        let candidacy = Candidacy(epoch: epoch, startedAt: now, deadline: now + timing.candidacyTimeout, votes: [name], refusals: [])
        state = .candidate(candidacy)
        out.append(.notice(.candidacyStarted(epoch: epoch, size: members.count)))
        for p in orderedPeers where alive(p, now: now) && isMember(p.identity.name) {
            requestVote(from: p.identity.name, epoch: epoch, now: now, into: &out)
        }
    }

    /// A vote request goes right behind a heartbeat on the same link: the voter judges the
    /// candidate's membership by the stamp of its last heartbeat, and followers heartbeat each
    /// other only every other interval, so without it a membership change of the last 200 ms
    /// looks stale to the voter, which refuses (the candidacy then fails and backs off).
    private func requestVote(from peerName: String, epoch: UInt64, now: Instant, into out: inout [Directive]) {
        out.append(.send(.heartbeat(heartbeat(for: peerName, now: now)), to: peerName))
        out.append(.send(.voteRequest(epoch: epoch), to: peerName))
    }

    private mutating func failCandidacy(_ c: Candidacy, reason: String, now: Instant, into out: inout [Directive]) {
        state = .follower
        let pause = Int64.random(in: timing.candidacyBackoff, using: &random)
        candidacyNotBefore = now + .milliseconds(pause)
        out.append(.notice(.candidacyFailed(epoch: c.epoch, reason: reason)))
    }

    private mutating func becomeMaster(_ c: Candidacy, now: Instant, into out: inout [Directive]) {
        state = .master(Mastership(epoch: c.epoch, admissionInFlight: nil, requestedAt: c.startedAt))
        promise = nil
        pendingVote = nil
        masterEpoch = c.epoch
        if membership.stamp == .bootstrap || membership.stamp.epoch < c.epoch {
            membership = MembershipConfiguration(epoch: c.epoch, version: 1, members: members)
            persistent.configuration = membership
            out.append(.persist(persistent))
            out.append(.notice(.membershipChanged(stamp: membership.stamp, size: members.count)))
            // Everyone learns the new master's membership at once, not a heartbeat later.
            for p in orderedPeers where p.linkUp { sendConfigurationIfNeeded(to: p.identity.name, into: &out) }
        }
        nextHeartbeat = now
    }

    // MARK: Membership

    /// The members that count: the configuration less the nodes that said goodbye to us (or
    /// were forgotten here) and have not re-entered since.
    private var members: [MemberEntry] {
        departed.isEmpty ? membership.members : membership.members.filter { departed[$0.name] == nil }
    }

    private func isMember(_ peerName: String) -> Bool {
        members.contains { $0.name == peerName }
    }

    private mutating func updateMemberIdentity(_ id: NodeIdentity) {
        if let i = membership.members.firstIndex(where: { $0.name == id.name }) { membership.members[i] = id }
    }

    private mutating func adopt(_ c: MembershipConfiguration, now: Instant, into out: inout [Directive]) {
        guard c.stamp > membership.stamp else { return }
        if case .master(let m) = state, c.epoch <= m.epoch { return }
        var members = c.members
        if let i = members.firstIndex(where: { $0.name == name }) { members[i] = identity }
        // Names that said goodbye to us stay out until the master admits them again.
        membership = MembershipConfiguration(epoch: c.epoch, version: c.version, members: members)
        for m in members where m.name != name { if let live = peers[m.name]?.identity { updateMemberIdentity(live) } }
        persistent.configuration = membership
        persistent.highestEpoch = max(persistent.highestEpoch, highestEpoch)
        out.append(.persist(persistent))
        out.append(.notice(.membershipChanged(stamp: membership.stamp, size: members.count)))
    }

    private mutating func sendConfigurationIfNeeded(to peer: String, into out: inout [Directive]) {
        guard membership.stamp != .bootstrap, var p = peers[peer], p.linkUp else { return }
        if p.configurationSent == membership.stamp || p.configuration >= membership.stamp { return }
        p.configurationSent = membership.stamp
        peers[peer] = p
        out.append(.send(.members(membership), to: peer))
    }

    /// The master changes the membership: bump the version, persist, tell everyone.
    /// Any change of the member list keeps the list before it backing the lease until a
    /// quorum has the new one (see `leaseEnd`).
    private mutating func commitMembership(_ members: [MemberEntry], now: Instant, into out: inout [Directive]) {
        guard case .master(var m) = state else { return }
        if m.previousMembers == nil { m.previousMembers = self.members }
        membership = MembershipConfiguration(epoch: m.epoch, version: membership.stamp.epoch == m.epoch ? membership.version + 1 : 1, members: members)
        m.admissionInFlight = membership.stamp
        state = .master(m)
        persistent.configuration = membership
        out.append(.persist(persistent))
        out.append(.notice(.membershipChanged(stamp: membership.stamp, size: members.count)))
        for p in orderedPeers where p.linkUp { sendConfigurationIfNeeded(to: p.identity.name, into: &out) }
    }

    /// Admit one newcomer at a time, and only once a majority has the previous configuration,
    /// so that the old and new majorities always overlap.
    private mutating func admitNewcomers(now: Instant, into out: inout [Directive]) {
        guard case .master(var m) = state else { return }
        if let inFlight = m.admissionInFlight {
            let have = members.filter { member in
                member.name == name || (peers[member.name].map { alive($0, now: now) && $0.configuration >= inFlight } ?? false)
            }.count
            guard have * 2 > members.count else { return }
            m.admissionInFlight = nil
            m.previousMembers = nil
            state = .master(m)
        }
        let newcomers = peers.values.filter { alive($0, now: now) && !isMember($0.identity.name) }.map(\.identity)
        guard let next = newcomers.min(by: { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }) else { return }
        commitMembership(members + [next], now: now, into: &out)
    }

    private mutating func dispatch(_ peerName: String, now: Instant, into out: inout [Directive]) {
        guard let p = peers.removeValue(forKey: peerName) else { return }
        dispatchedPeers[peerName] = p.identity
        out.append(.notice(.peerDispatched(name: peerName)))
        if let pr = promise, pr.name == peerName { releasePromise(now: now, into: &out) }
        if pendingVote?.name == peerName { pendingVote = nil }
        // Only the master edits the configuration; everyone stops counting a node that said
        // goodbye at once (until it re-enters), so no two configurations share a stamp.
        departed[peerName] = p.identity.instance
        if case .master = state {
            commitMembership(members.filter { $0.name != peerName }, now: now, into: &out)
        }
        if case .candidate(var c) = state {
            c.votes.remove(peerName)
            state = .candidate(c)
        }
    }

    private mutating func forgetLocally(_ peerName: String, now: Instant, into out: inout [Directive]) -> ForgetOutcome {
        if peerName == name { return .stillConnected }
        if let p = peers[peerName], alive(p, now: now) { return .stillConnected }
        let known = peers[peerName] != nil || dispatchedPeers[peerName] != nil || isMember(peerName)
        guard known else { return .unknown }
        peers[peerName] = nil
        dispatchedPeers[peerName] = nil
        out.append(.notice(.peerForgotten(name: peerName)))
        let wasMember = isMember(peerName)
        departed[peerName] = 0
        if case .master = state, wasMember {
            commitMembership(members.filter { $0.name != peerName }, now: now, into: &out)
        }
        return .forgotten
    }

    // MARK: Leaving and stepping down

    private mutating func leave(code: Int32, cause: RoleChangeCause, now: Instant, into out: inout [Directive]) {
        switch state {
        case .dispatched:
            return
        case .resigning(var r):
            r.then = .leave(code: code)
            state = .resigning(r)
            setRole(.dispatched, cause: cause, now: now, into: &out)
        case .master(let m):
            out.append(.notice(.steppingDown(epoch: m.epoch, cause: cause)))
            state = .resigning(Resignation(epoch: m.epoch, hook: 0, then: .leave(code: code)))
            let hook = setRole(.dispatched, cause: cause, now: now, into: &out)
            if case .resigning(var r) = state {
                r.hook = hook ?? 0
                state = .resigning(r)
            }
            nextHeartbeat = now
            if hook == nil { finishResignation(now: now, into: &out) }
        case .follower, .candidate:
            setRole(.dispatched, cause: cause, now: now, into: &out)
            say(.bye, into: &out, now: now)
            state = .dispatched
            out.append(.exit(code: code))
        }
    }

    private mutating func stepDown(cause: RoleChangeCause, now: Instant, into out: inout [Directive]) {
        guard case .master(let m) = state else { return }
        out.append(.notice(.steppingDown(epoch: m.epoch, cause: cause)))
        state = .resigning(Resignation(epoch: m.epoch, hook: 0, then: .follow))
        let q = quorum(now: now)
        let hook = setRole(q.quorate ? .slave : .noQuorum, cause: cause, now: now, into: &out)
        if case .resigning(var r) = state {
            r.hook = hook ?? 0
            state = .resigning(r)
        }
        nextHeartbeat = now
    }

    private mutating func stepDownSuperseded(now: Instant, into out: inout [Directive]) {
        switch state {
        case .master(let m):
            out.append(.notice(.steppingDown(epoch: m.epoch, cause: .superseded)))
            state = .follower
            setRole(quorum(now: now).quorate ? .slave : .noQuorum, cause: .superseded, now: now, into: &out)
        case .resigning(let r):
            if case .leave = r.then { return }
            state = .follower
        default:
            break
        }
    }

    private mutating func onHookFinished(_ id: UInt64, now: Instant, into out: inout [Directive]) {
        if case .resigning(let r) = state, id >= r.hook { finishResignation(now: now, into: &out) }
    }

    private mutating func finishResignation(now: Instant, into out: inout [Directive]) {
        guard case .resigning(let r) = state else { return }
        switch r.then {
        case .follow:
            state = .follower
            for p in orderedPeers where p.linkUp { out.append(.send(.resign(epoch: r.epoch), to: p.identity.name)) }
            nextHeartbeat = now
        case .leave(let code):
            state = .dispatched
            say(.bye, into: &out, now: now)
            out.append(.exit(code: code))
        }
    }

    private func say(_ message: Message, into out: inout [Directive], now: Instant) {
        for p in orderedPeers where p.linkUp { out.append(.send(message, to: p.identity.name)) }
    }

    // MARK: Roles and hooks

    @discardableResult
    private mutating func setRole(_ newRole: Role, cause: RoleChangeCause, now: Instant, into out: inout [Directive]) -> UInt64? {
        guard newRole != role else { return nil }
        let previous = role
        role = newRole
        let current = currentMaster(now: now)
        let epoch = heldEpoch ?? current?.epoch ?? masterEpoch
        // A node without quorum, or one that left, has no master to name.
        let master = newRole == .noQuorum || newRole == .dispatched ? nil : current
        out.append(.notice(.roleChanged(from: previous, to: newRole, epoch: epoch, cause: cause)))
        guard newRole != .discovering else { return nil }
        let id = nextHookID
        nextHookID += 1
        out.append(.runHook(HookRun(id: id, role: newRole, previousRole: previous, epoch: epoch, master: master?.name, cause: cause)))
        return id
    }

    // MARK: Quorum arithmetic

    private func alive(_ p: Peer, now: Instant) -> Bool {
        !p.lost && now - p.lastHeard < timing.electionTimeout
    }

    private var expectedNodesSeen: Bool {
        guard let n = configuration.expectedNodes else { return true }
        return seenNames.count >= n
    }

    /// `true` when `present` (names) is a quorum of the membership.
    private func isQuorum(_ present: Set<String>) -> Bool {
        let size = members.count
        guard size > 0 else { return false }
        let count = members.filter { present.contains($0.name) }.count
        if count * 2 > size { return true }
        if configuration.tieBreaker, count * 2 == size, let best = configuration.metric.best(of: members) {
            return present.contains(best.name)
        }
        return false
    }

    private func aliveNames(now: Instant) -> Set<String> {
        var names: Set<String> = [name]
        for p in orderedPeers where alive(p, now: now) { names.insert(p.identity.name) }
        return names
    }

    private func quorum(now: Instant) -> (size: Int, quorate: Bool) {
        (members.count, isQuorum(aliveNames(now: now)))
    }

    /// The best alive member by the metric (self included when a member).
    public func wanted(now: Instant) -> NodeIdentity? {
        var candidates: [NodeIdentity] = isMember ? [identity] : []
        for p in orderedPeers where alive(p, now: now) && isMember(p.identity.name) { candidates.append(p.identity) }
        return configuration.metric.best(of: candidates)
    }

    // MARK: Lease

    private func leaseEnd(now: Instant) -> Instant {
        guard case .master(let m) = state else { return now }
        // While an admission is in flight, a quorum of the configuration before it also holds
        // the lease: one added member keeps every old and new majority overlapping, and the
        // newcomer has not acknowledged anything yet.
        let current = lease(over: members, now: now)
        guard let previous = m.previousMembers else { return current }
        return max(current, lease(over: previous, now: now))
    }

    /// When the lease backed by a quorum of `list` ends. Self acknowledges at `now`; each
    /// follower at the send time of the last heartbeat it echoed. A lost peer's
    /// acknowledgement still stands for the promise it made: a crashed voter that restarts
    /// does not vote before `electionTimeout` has passed (see voteDecision).
    private func lease(over list: [MemberEntry], now: Instant) -> Instant {
        var times: [Instant] = [now]
        for m in list where m.name != name {
            if let t = peers[m.name]?.acknowledgedAt { times.append(t) }
        }
        let needed = list.count / 2 + 1
        times.sort(by: >)
        if times.count >= needed { return times[needed - 1] + timing.leaseDuration }
        // With the tie-breaker, half the cluster holding the best member is enough.
        if configuration.tieBreaker, list.count % 2 == 0, times.count == list.count / 2,
           let best = configuration.metric.best(of: list) {
            let holders = Set([name] + list.filter { peers[$0.name]?.acknowledgedAt != nil }.map(\.name))
            if holders.contains(best.name) { return times[times.count - 1] + timing.leaseDuration }
        }
        return now
    }

    // MARK: Heartbeats

    private func heartbeat(for peer: String, now: Instant) -> Heartbeat {
        Heartbeat(
            epoch: max(highestEpoch, persistent.votedEpoch), role: role, holding: heldEpoch,
            following: currentMaster(now: now), sequence: sequence, echo: peers[peer]?.receivedSequence ?? 0,
            configuration: membership.stamp)
    }

    private mutating func sendHeartbeats(now: Instant, into out: inout [Directive]) {
        sequence += 1
        sentAt[sequence] = now
        if sequence > 64 { sentAt[sequence - 64] = nil }
        // The master and its followers exchange a heartbeat every interval (its lease, their
        // promises). Two followers only need to know the other is alive: every other interval
        // is enough, which saves a third of an idle cluster's traffic and wake-ups.
        let master = currentMaster(now: now)?.name
        let everyone = heldEpoch != nil || master == nil || sequence % 2 == 0
        for p in orderedPeers where p.linkUp {
            let name = p.identity.name
            guard everyone || name == master || p.following?.name == nil || p.following?.name == name else { continue }
            out.append(.send(.heartbeat(heartbeat(for: name, now: now)), to: name))
        }
        nextHeartbeat = now + timing.heartbeatInterval
    }

    // MARK: Reconcile

    /// Brings everything time-dependent up to date, then decides: step down, campaign,
    /// vote, change role, send heartbeats and announcements, reconnect, and when to wake up.
    private mutating func reconcile(now: Instant, into out: inout [Directive]) {
        if case .dispatched = state { return }

        // Silent peers are lost.
        let silenceLimit = timing.electionTimeout
        for (peerName, p) in orderedPeerPairs where !p.lost && now - p.lastHeard >= silenceLimit {
            peers[peerName]?.lost = true
            out.append(.notice(.peerLost(name: peerName, evidence: "silent for \(silenceLimit)")))
        }
        // An expired promise is no promise.
        if let pr = promise, pr.until <= now { releasePromise(now: now, into: &out) }

        let q = quorum(now: now)
        // A node has settled once its discovery window is over: until then it may not have
        // linked with every peer yet, so it neither judges its quorum (no `no-quorum`, no
        // dispatch) nor, unless it has already heard a master, campaigns. A newcomer better
        // than the master it heard takes over without waiting.
        let settled = now >= startedAt + timing.discoveryWindow
        let mayCampaign = settled || knowsCluster

        // The master keeps its role only within its lease, with a quorum, and while it is the best.
        if case .master = state {
            if now >= leaseEnd(now: now) {
                stepDown(cause: .leaseExpired, now: now, into: &out)
            } else if !q.quorate {
                stepDown(cause: .quorumLost, now: now, into: &out)
            } else if let w = wanted(now: now), w.name != name {
                stepDown(cause: .handover, now: now, into: &out)
            } else {
                admitNewcomers(now: now, into: &out)
            }
        }

        // The minority rule.
        if configuration.onQuorumLoss == .dispatch, settled, !q.quorate, heldEpoch == nil {
            if case .dispatched = state {} else {
                leave(code: 3, cause: .quorumLost, now: now, into: &out)
                return
            }
        }

        // Candidacy: resolve a running one, or start one.
        if case .candidate(let c) = state {
            let stillWanted = wanted(now: now)?.name == name
            if now >= c.deadline {
                // Also when replies arrive only now (after a pause): they back no lease any more.
                failCandidacy(c, reason: "no quorum of votes before the deadline", now: now, into: &out)
            } else if isQuorum(c.votes) {
                // Win only with a lease that has not already ended: the votes' promises must
                // still run, or the master hook would start for a role this node cannot hold.
                if lease(over: members, now: now) > now {
                    becomeMaster(c, now: now, into: &out)
                } else {
                    failCandidacy(c, reason: "the votes came too late to back a lease", now: now, into: &out)
                }
            } else if c.refusals.count * 2 >= members.count || !stillWanted || !q.quorate {
                failCandidacy(c, reason: !stillWanted ? "a better node is alive" : (!q.quorate ? "no quorum" : "not enough votes"), now: now, into: &out)
            }
        }
        if case .follower = state, mayCampaign, now >= candidacyNotBefore, isMember, expectedNodesSeen, q.quorate,
           promise == nil || promise!.until <= now, wanted(now: now)?.name == name {
            startCandidacy(now: now, into: &out)
            if case .candidate(let c) = state, isQuorum(c.votes), lease(over: members, now: now) > now { becomeMaster(c, now: now, into: &out) }
        }

        // A deferred vote, once the promise that held it back is gone.
        if let pv = pendingVote {
            if pv.epoch < persistent.votedEpoch || peers[pv.name] == nil {
                pendingVote = nil
            } else if case .defer = voteDecision(candidate: pv.name, epoch: pv.epoch, stamp: pv.stamp, now: now) {
                // still held back
            } else {
                pendingVote = nil
                onVoteRequest(epoch: pv.epoch, from: pv.name, stamp: pv.stamp, now: now, into: &out)
            }
        }

        // The role the outside sees, and its hook.
        updateRole(now: now, settled: settled, into: &out)

        // Tell everyone about a new master once.
        if let m = currentMaster(now: now), m != lastAnnouncedMaster {
            lastAnnouncedMaster = m
            out.append(.notice(.masterChanged(master: m.name, epoch: m.epoch)))
        } else if currentMaster(now: now) == nil {
            lastAnnouncedMaster = nil
        }

        if now >= nextHeartbeat { sendHeartbeats(now: now, into: &out) }

        // Discovery: several announcements at first, then a slow steady rate.
        if now >= nextAnnounce {
            out.append(.broadcast(Announce(cluster: configuration.cluster, identity: identity)))
            announceCount += 1
            if announceCount < timing.announceBackoff.count {
                nextAnnounce = startedAt + timing.announceBackoff[announceCount]
                if nextAnnounce <= now { nextAnnounce = now + .milliseconds(1) }
            } else {
                nextAnnounce = now + timing.announceInterval
            }
        }

        // Reconnect to known peers whose link is down.
        let maximumDelay = timing.reconnectMaximum
        for (peerName, p) in orderedPeerPairs where !p.linkUp && now >= p.reconnectAt {
            if let since = connecting[peerName], now - since < maximumDelay { continue }
            connecting[peerName] = now
            peers[peerName]?.reconnectAt = now + p.reconnectDelay
            peers[peerName]?.reconnectDelay = min(p.reconnectDelay * 2, maximumDelay)
            out.append(.connect(p.identity))
        }

        out.append(.wakeUp(at: nextWakeUp(now: now)))
    }

    private mutating func updateRole(now: Instant, settled: Bool, into out: inout [Directive]) {
        let q = quorum(now: now)
        let target: Role
        var cause: RoleChangeCause = .masterChanged
        switch state {
        case .dispatched:
            return
        case .master:
            target = .master
            cause = .elected
        case .resigning(let r):
            if case .leave = r.then { return }
            target = q.quorate ? .slave : .noQuorum
        case .follower, .candidate:
            if let m = currentMaster(now: now), q.quorate, role == .discovering,
               let master = peers[m.name]?.identity, configuration.metric.isBetter(identity, than: master),
               now < startedAt + timing.discoveryWindow + timing.electionTimeout {
                // A newcomer better than the master by the metric: the master hands over to it,
                // so it goes straight to master instead of running its slave hook first.
                target = .discovering
            } else if currentMaster(now: now) != nil && q.quorate {
                target = .slave
                cause = role == .discovering ? .joined : (role == .noQuorum ? .quorumRegained : .masterChanged)
            } else if !q.quorate {
                target = settled ? .noQuorum : role
                cause = .quorumLost
            } else {
                target = role == .noQuorum ? .slave : role
                cause = .quorumRegained
            }
        }
        setRole(target, cause: cause, now: now, into: &out)
    }

    private func nextWakeUp(now: Instant) -> Instant {
        var t = min(nextHeartbeat, nextAnnounce)
        func consider(_ x: Instant) { if x > now { t = min(t, x) } }
        consider(startedAt + timing.discoveryWindow)
        consider(startedAt + timing.discoveryWindow + timing.electionTimeout)
        if pendingVote != nil { consider(startedAt + timing.electionTimeout) }
        consider(candidacyNotBefore)
        if let pr = promise { consider(pr.until) }
        for p in peers.values {
            if !p.lost { consider(p.lastHeard + timing.electionTimeout) }
            if !p.linkUp { consider(p.reconnectAt) }
        }
        switch state {
        case .candidate(let c): consider(c.deadline)
        case .master: consider(leaseEnd(now: now))
        default: break
        }
        return max(t, now + .microseconds(100))
    }
}
