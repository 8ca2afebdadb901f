import QuorumCore

/// A scripted cluster on the simulated network, for tests that read like the original's
/// scenarios: start nodes, kill one, let time pass, look at what every node reports.
///
/// Time is simulated: `run(for:)` advances it and processes everything due. The safety
/// checks of the simulator run after every step; `violations` lists what they found. Every
/// host's clock runs at the global rate from zero unless a test changes it.
public struct SimulatedCluster {
    var world: World

    /// - Parameters:
    ///   - nodes: names and peer ports, in the order they may be started.
    ///   - plantedHole: a hole brought back on purpose (the core's, or the simulator's own
    ///     for `stoppedClock` and `staleMasterHook`).
    public init(nodes: [(name: String, port: UInt16)], configuration: CoreConfiguration = CoreConfiguration(cluster: "test"), seed: UInt64 = 1, maximumHookTime: Duration = .milliseconds(5), trace: Bool = false, plantedHole: PlantedHole? = nil) {
        var options = SimulationOptions()
        options.trace = trace
        options.nodes = nodes.count
        options.maximumHookTime = maximumHookTime
        options.plantedHole = plantedHole
        world = World(options: options, seed: seed, rng: SplitMix64(seed: seed), configuration: configuration, names: nodes.map(\.name), ports: nodes.map(\.port))
    }

    /// Global simulated time.
    public var now: Instant { world.now }
    /// Every step, when created with `trace: true`.
    public var trace: [String] { world.trace.lines }
    public var violations: [Violation] { world.result.violations }
    /// How many times the world had been whole for the agreement bound and was checked.
    public var agreementChecks: Int { world.whole.checks }
    /// Every hook that started: when, on which node, and what it was.
    public var hooks: [(time: Instant, node: String, run: HookRun)] { world.hookLog }
    /// Exit codes of the members' processes that ended by themselves (a leave: 0; a name
    /// already taken: 2; a dispatch on quorum loss: 3).
    public var exitCodes: [String: Int32] {
        var codes: [String: Int32] = [:]
        for i in world.primaries { if let c = world.slots[i].lastExit { codes[world.slots[i].name] = c } }
        return codes
    }

    private func index(_ name: String) -> Int {
        guard let i = world.primaries.first(where: { world.slots[$0].name == name }) else { preconditionFailure("no node \(name)") }
        return i
    }

    private mutating func settle() { world.observe() }

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

    public mutating func start(_ name: String) { world.apply(.start(index(name))); settle() }
    /// SIGKILL: no goodbye; links close and the port refuses connections.
    public mutating func kill(_ name: String) { world.apply(.crash(index(name))); settle() }
    /// Start a killed node again under its name, with its persisted state or with its state
    /// directory wiped.
    public mutating func restart(_ name: String, wipe: Bool = false) { world.apply(.restart(index(name), wipe: wipe)); settle() }
    public mutating func pause(_ name: String) { world.apply(.pause(index(name))); settle() }
    /// The host is suspended: the process stops, its clock goes on (stops with the planted
    /// hole `stoppedClock`).
    public mutating func suspend(_ name: String) { world.apply(.suspend(index(name))); settle() }
    /// Ends a pause or a suspend.
    public mutating func resume(_ name: String) { world.apply(.resume(index(name))); settle() }
    /// Graceful dispatch (`q`, SIGTERM, `quorumctl leave`).
    public mutating func leave(_ name: String) { world.apply(.leave(index(name))); settle() }
    public mutating func partition(_ groups: [[String]]) { world.apply(.partition(groups.map { $0.map(index) })); settle() }
    public mutating func heal() { world.apply(.heal); settle() }
    /// The node's host stalls for `d`; its clock jumps forward by as much.
    public mutating func jumpClock(of name: String, by d: Duration) { world.apply(.clockJump(index(name), d)); settle() }
    /// fsync on the node's host takes long (drawn) for `d`.
    public mutating func slowDisk(on name: String, for d: Duration) { world.apply(.slowDisk(index(name), until: world.now + d)); settle() }

    /// Starts a second process with `name`'s name on another host; returns its handle.
    @discardableResult
    public mutating func startDuplicate(of name: String, port: UInt16, birth: Int64? = nil) -> Int {
        let d = world.slots.count
        var slot = World.Slot(name: name, port: port, address: "10.0.1.\(d + 1)", clock: .ideal)
        slot.duplicateOf = index(name)
        slot.birthOverride = birth
        world.slots.append(slot)
        world.apply(.start(d))
        settle()
        return d
    }

    public mutating func stopDuplicate(_ handle: Int, graceful: Bool = false) { world.apply(.stopDuplicate(handle, graceful: graceful)); settle() }
    public func isRunning(duplicate handle: Int) -> Bool { world.slots[handle].status == .running }
    public func exitCode(duplicate handle: Int) -> Int32? { world.slots[handle].lastExit }

    public func isRunning(_ name: String) -> Bool { world.slots[index(name)].status == .running }

    /// `quorumctl forget`: answered at once by the node (which must be running).
    public mutating func forget(_ peer: String, on name: String) -> ForgetOutcome {
        let i = index(name)
        guard world.slots[i].status == .running, var node = world.slots[i].instance else { return .unknown }
        let directives = node.handle(.forgetRequested(name: peer), now: world.local(i), wallClock: world.wall(i))
        world.slots[i].instance = node
        world.execute(directives[...], for: i)
        settle()
        for case .forgetAnswered(_, let outcome) in directives { return outcome }
        return .unknown
    }

    public func status(_ name: String) -> QuorumInstance.Status? {
        let i = index(name)
        guard world.slots[i].isAlive else { return nil }
        return world.slots[i].instance?.status(now: world.local(i))
    }

    public func peers(of name: String) -> [QuorumInstance.PeerStatus] {
        let i = index(name)
        return world.slots[i].instance?.peerStatuses(now: world.local(i)) ?? []
    }

    public func peerState(_ peer: String, seenBy name: String) -> QuorumInstance.PeerState? {
        peers(of: name).first { $0.identity.name == peer }?.state
    }

    public func instance(_ name: String) -> QuorumInstance? { world.slots[index(name)].instance }

    /// The names of the running nodes that hold the master role (lease included, by their own clocks) now.
    public var masters: [String] {
        world.slots.indices.filter { i in
            world.slots[i].status == .running && world.slots[i].instance?.isMaster(now: world.local(i)) == true
        }.map { world.slots[$0].name }
    }

    /// `true` when every running member's process names `master` as its master.
    public func allAgree(on master: String) -> Bool {
        let running = world.primaries.filter { world.slots[$0].status == .running }
        return !running.isEmpty && running.allSatisfy { world.slots[$0].instance?.currentMaster(now: world.local($0))?.name == master }
    }
}
