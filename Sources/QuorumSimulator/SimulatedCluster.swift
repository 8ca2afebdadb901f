import QuorumCore

/// A scripted cluster on the simulated network, for tests that read like the original's
/// scenarios: start nodes, kill one, let time pass, look at what every node reports.
///
/// Time is simulated: `run(for:)` advances it and processes everything due. The safety
/// checks of the simulator run after every step; `violations` lists what they found.
public struct SimulatedCluster {
    var world: World

    /// - Parameters:
    ///   - nodes: names and peer ports, in the order they may be started.
    public init(nodes: [(name: String, port: UInt16)], configuration: CoreConfiguration = CoreConfiguration(cluster: "test"), seed: UInt64 = 1, maximumHookTime: Duration = .milliseconds(5), trace: Bool = false) {
        var options = SimulationOptions()
        options.trace = trace
        options.nodes = nodes.count
        options.maximumHookTime = maximumHookTime
        world = World(options: options, seed: seed, rng: SplitMix64(seed: seed), configuration: configuration, names: nodes.map(\.name), ports: nodes.map(\.port))
    }

    public var now: Instant { world.now }
    /// Every step, when created with `trace: true`.
    public var trace: [String] { world.trace }
    public var violations: [Violation] { world.violations }
    /// Every hook that started: when, on which node, and what it was.
    public var hooks: [(time: Instant, node: String, run: HookRun)] { world.hookLog }
    /// Exit codes of nodes that ended by themselves (a leave: 0; a dispatch on quorum loss: 3).
    public var exitCodes: [String: Int32] { world.exitCodes }

    private func index(_ name: String) -> Int {
        guard let i = world.slots.firstIndex(where: { $0.name == name }) else { preconditionFailure("no node \(name)") }
        return i
    }

    public mutating func run(for duration: Duration) { world.step(until: world.now + duration) }

    /// Runs until `condition` holds or `timeout` passes; returns the simulated time it took, or nil.
    @discardableResult
    public mutating func run(until timeout: Duration, _ condition: (SimulatedCluster) -> Bool) -> Duration? {
        let start = world.now
        let end = start + timeout
        while world.now < end {
            if condition(self) { return world.now - start }
            let next = min(world.now + .milliseconds(1), end)
            world.step(until: next)
        }
        return condition(self) ? world.now - start : nil
    }

    public mutating func start(_ name: String) { world.apply(.rejoin(index(name))) }
    /// SIGKILL: no goodbye; links close and the port refuses connections.
    public mutating func kill(_ name: String) { world.apply(.crash(index(name))) }
    /// Start a killed node again under its name (its persisted state kept).
    public mutating func restart(_ name: String) { world.apply(.restart(index(name))) }
    public mutating func pause(_ name: String) { world.apply(.pause(index(name))) }
    public mutating func resume(_ name: String) { world.apply(.resume(index(name))) }
    /// Graceful dispatch (`q`, SIGTERM, `quorumctl leave`).
    public mutating func leave(_ name: String) { world.apply(.leave(index(name))) }
    public mutating func partition(_ groups: [[String]]) { world.apply(.partition(groups.map { $0.map(index) })) }
    public mutating func heal() { world.apply(.heal) }

    public func isRunning(_ name: String) -> Bool { world.slots[index(name)].status == .running }

    public mutating func forget(_ peer: String, on name: String) -> ForgetOutcome {
        let i = index(name)
        guard var node = world.slots[i].instance else { return .unknown }
        let directives = node.handle(.forgetRequested(name: peer), now: world.now)
        world.slots[i].instance = node
        world.execute(directives, for: i)
        for case .forgetAnswered(_, let outcome) in directives { return outcome }
        return .unknown
    }

    public func status(_ name: String) -> QuorumInstance.Status? {
        let s = world.slots[index(name)]
        guard s.status == .running || s.status == .paused else { return nil }
        return s.instance?.status(now: world.now)
    }

    public func peers(of name: String) -> [QuorumInstance.PeerStatus] {
        world.slots[index(name)].instance?.peerStatuses(now: world.now) ?? []
    }

    public func peerState(_ peer: String, seenBy name: String) -> QuorumInstance.PeerState? {
        peers(of: name).first { $0.identity.name == peer }?.state
    }

    public func instance(_ name: String) -> QuorumInstance? { world.slots[index(name)].instance }

    /// The names of the running nodes that hold the master role (lease included) now.
    public var masters: [String] {
        world.slots.filter { $0.status == .running && $0.instance?.isMaster(now: world.now) == true }.map(\.name)
    }

    /// `true` when every running node names `master` as its master.
    public func allAgree(on master: String) -> Bool {
        let running = world.slots.filter { $0.status == .running }
        return !running.isEmpty && running.allSatisfy { $0.instance?.currentMaster(now: world.now)?.name == master }
    }
}
