import QuorumCore

/// A deterministic simulation of a cluster: N nodes running the real `QuorumInstance`
/// over a simulated network, with every fault drawn from one seeded generator.
///
/// The network models what the shell sees from TCP and UDP: frames on a link arrive in
/// order after a small random delay; a partition silently drops frames and makes
/// connection attempts time out; a crashed process's links close and connections to its
/// port are refused; a paused process receives nothing until it resumes (its kernel queues
/// the frames). Hooks take a random time and run one at a time per node.
public struct SimulationOptions: Sendable {
    public var nodes: Int = 5
    /// Simulated time of one schedule (faults happen in the first part, then it heals).
    public var duration: Duration = .seconds(12)
    /// How long the network is whole and fault-free, with every node back, before the
    /// liveness check: all nodes agree on one master.
    public var settle: Duration = .seconds(4)
    /// The interface's bound: after the final heal, every node agrees on one master within it.
    public var agreementBound: Duration = .seconds(2)
    public var faultsPerSchedule: ClosedRange<Int> = 3...8
    public var maximumHookTime: Duration = .milliseconds(25)
    /// Record every step (for replaying one seed).
    public var trace: Bool = false
    /// Deliberately broken behaviour, to prove the checks catch it.
    public var plantedBug: PlantedBug? = nil

    public init() {}
}

public enum PlantedBug: String, Sendable, CaseIterable {
    /// A master that ignores its lease: it answers as master although its lease ended.
    case ignoreLease = "ignore-lease"
    /// Votes are granted by a node that still hears a live master.
    case ignorePromise = "ignore-promise"
}

public struct Violation: Sendable, CustomStringConvertible {
    public var seed: UInt64
    public var time: Instant
    public var rule: String
    public var detail: String
    public var description: String { "seed \(seed) at \(time): \(rule): \(detail)" }
}

public struct ScheduleResult: Sendable {
    public var seed: UInt64
    public var violations: [Violation]
    public var faults: [String]
    public var trace: [String]
    /// Time from the end of the last fault to agreement on one master.
    public var settleTime: Duration?
    public var events: Int
    /// Failover times after crashes of the master: crash → next master's hook start.
    public var crashFailovers: [Duration]
    public var leaveHandovers: [Duration]
}

public struct ClusterSimulator {
    public let options: SimulationOptions
    public init(options: SimulationOptions) { self.options = options }

    public func run(seed: UInt64) -> ScheduleResult {
        var world = World(options: options, seed: seed)
        world.run()
        return ScheduleResult(
            seed: seed, violations: world.violations, faults: world.faultLog, trace: world.trace,
            settleTime: world.settleTime, events: world.eventCount, crashFailovers: world.crashFailovers,
            leaveHandovers: world.leaveHandovers)
    }
}

// MARK: - The simulated world

struct World {
    enum Status: Equatable { case running, paused, crashed, stopped }

    struct Slot {
        var name: String
        var port: UInt16
        var address: String
        var instance: QuorumInstance?
        var status: Status = .stopped
        var disk: PersistentState? = nil
        var wake: Instant? = nil
        var held: [(Event)] = []  // events queued while paused
        var hookQueue: [HookRun] = []
        var hookRunning: (run: HookRun, startedAt: Instant)? = nil
        /// Start of the current master interval (master hook start), if open.
        var masterSince: Instant? = nil
        var masterEpoch: UInt64 = 0
        var generation = 0
    }

    enum Action {
        case event(node: Int, generation: Int, Event)
        case wake(node: Int, generation: Int)
        case hookDone(node: Int, generation: Int, id: UInt64)
        case fault(Fault)
        case connect(from: Int, generation: Int, target: NodeIdentity)
    }

    enum Fault {
        case crash(Int), restart(Int), pause(Int), resume(Int), leave(Int), rejoin(Int)
        case partition([[Int]]), oneWay(from: Int, to: Int), heal
        case datagramLoss(Double)
        case finalHeal
    }

    let options: SimulationOptions
    let seed: UInt64
    var rng: SplitMix64
    var now = Instant.zero
    var queue = EventQueue<Action>()
    var slots: [Slot] = []
    var blocked: Set<Pair> = []  // directed: from → to dropped
    var datagramLoss = 0.0
    var linkClock: [Pair: Instant] = [:]  // FIFO per directed link
    var links: Set<Pair> = []  // open links (both directions recorded)
    /// Since when frames sent on a link have been dropped by a cut (directed). A link cut for
    /// `Timing.linkTimeout` is aborted at both ends, as the kernel's TCP_USER_TIMEOUT does.
    var cutSince: [Pair: Instant] = [:]
    var epochMasters: [UInt64: String] = [:]
    var violations: [Violation] = []
    var faultLog: [String] = []
    let traceBuffer = TraceBuffer()
    var eventCount = 0
    var healedAt: Instant? = nil
    var settleTime: Duration? = nil
    var crashFailovers: [Duration] = []
    var leaveHandovers: [Duration] = []
    var pendingFailover: (since: Instant, kind: String, from: String)? = nil
    /// Every hook start: when, which node, what.
    var hookLog: [(time: Instant, node: String, run: HookRun)] = []
    var exitCodes: [String: Int32] = [:]
    var config: CoreConfiguration

    struct Pair: Hashable { var from: Int, to: Int }

    init(options: SimulationOptions, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var c = CoreConfiguration(cluster: "sim")
        c.metric = Bool.random(using: &rng) ? .age : .port
        c.onQuorumLoss = rng.next() % 4 == 0 ? .dispatch : .wait
        c.tieBreaker = rng.next() % 3 == 0
        let names = (0..<options.nodes).map { "n\($0)" }
        let ports = (0..<options.nodes).map { UInt16(7000 + ($0 * 7) % 97) }
        self.init(options: options, seed: seed, rng: rng, configuration: c, names: names, ports: ports)
    }

    init(options: SimulationOptions, seed: UInt64, rng: SplitMix64, configuration: CoreConfiguration, names: [String], ports: [UInt16]) {
        self.options = options
        self.seed = seed
        self.rng = rng
        config = configuration
        for (i, name) in names.enumerated() {
            slots.append(Slot(name: name, port: ports[i], address: "10.0.0.\(i + 1)"))
        }
    }

    // MARK: Running

    mutating func run() {
        let end = Instant.zero + options.duration
        // Nodes start one after another, a few milliseconds to a second apart.
        var t = Instant.zero
        for i in slots.indices {
            queue.push(at: t, .fault(.rejoin(i)))
            t = t + .milliseconds(Int64.random(in: 0...600, using: &rng))
        }
        // Random faults, each healed later.
        let faultWindowEnd = end - options.settle - .seconds(1)
        let count = Int.random(in: options.faultsPerSchedule, using: &rng)
        for _ in 0..<count {
            let at = Instant(nanoseconds: Int64.random(in: Duration.seconds(2).nanosecondsClamped...max(Duration.seconds(2).nanosecondsClamped + 1, faultWindowEnd.nanoseconds), using: &rng))
            let hold = Duration.milliseconds(Int64.random(in: 50...2500, using: &rng))
            scheduleFault(at: at, hold: hold, end: faultWindowEnd)
        }
        queue.push(at: faultWindowEnd, .fault(.finalHeal))
        step(until: end)
        if violations.isEmpty { checkLiveness() }
    }

    /// Processes everything that happens up to `end`, checking safety after every step.
    mutating func step(until end: Instant) {
        while let next = queue.peekTime, next <= end, let (time, action) = queue.pop() {
            now = time
            eventCount += 1
            perform(action)
            checkSafety()
            if !violations.isEmpty { break }
            if let healed = healedAt, settleTime == nil, agreed() { settleTime = now - healed }
        }
        if violations.isEmpty { now = max(now, end) }
    }

    mutating func scheduleFault(at: Instant, hold: Duration, end: Instant) {
        let n = slots.count
        let victim = Int.random(in: 0..<n, using: &rng)
        let healAt = min(at + hold, end)
        switch rng.next() % 8 {
        case 0:
            queue.push(at: at, .fault(.crash(victim)))
            queue.push(at: healAt, .fault(.restart(victim)))
        case 1:
            queue.push(at: at, .fault(.pause(victim)))
            queue.push(at: healAt, .fault(.resume(victim)))
        case 2:
            queue.push(at: at, .fault(.leave(victim)))
            queue.push(at: healAt, .fault(.rejoin(victim)))
        case 3, 4:
            var order = Array(0..<n)
            order.shuffle(using: &rng)
            let groups: [[Int]]
            if n >= 5, rng.next() % 3 == 0 {
                let a = Int.random(in: 1...(n - 2), using: &rng)
                let b = Int.random(in: (a + 1)...(n - 1), using: &rng)
                groups = [Array(order[..<a]), Array(order[a..<b]), Array(order[b...])]
            } else {
                let a = Int.random(in: 1...(n - 1), using: &rng)
                groups = [Array(order[..<a]), Array(order[a...])]
            }
            queue.push(at: at, .fault(.partition(groups)))
            queue.push(at: healAt, .fault(.heal))
        case 5:
            var other = Int.random(in: 0..<n, using: &rng)
            if other == victim { other = (victim + 1) % n }
            queue.push(at: at, .fault(.oneWay(from: victim, to: other)))
            queue.push(at: healAt, .fault(.heal))
        case 6:
            queue.push(at: at, .fault(.datagramLoss(Double(Int.random(in: 20...100, using: &rng)) / 100)))
            queue.push(at: healAt, .fault(.datagramLoss(0)))
        default:
            // A crash of whoever is master at that moment.
            queue.push(at: at, .fault(.crash(-1)))
            queue.push(at: healAt, .fault(.restart(-1)))
        }
    }

    func log(_ line: @autoclosure () -> String) {
        if options.trace { traceBuffer.lines.append("\(now) \(line())") }
    }
    var trace: [String] { traceBuffer.lines }

    // MARK: Actions

    mutating func perform(_ action: Action) {
        switch action {
        case .event(let i, let gen, let event):
            guard slots[i].generation == gen else { return }
            deliver(event, to: i)
        case .wake(let i, let gen):
            guard slots[i].generation == gen, let w = slots[i].wake, w <= now else { return }
            slots[i].wake = nil
            deliver(.tick, to: i)
        case .hookDone(let i, let gen, let id):
            guard slots[i].generation == gen else { return }
            slots[i].hookRunning = nil
            startNextHook(i)
            deliver(.hookFinished(id), to: i)
        case .connect(let from, let gen, let target):
            guard slots[from].generation == gen, slots[from].status != .crashed, slots[from].status != .stopped else { return }
            connect(from: from, target: target)
        case .fault(let f):
            apply(f)
        }
    }

    mutating func deliver(_ event: Event, to i: Int) {
        switch slots[i].status {
        case .crashed, .stopped: return
        case .paused:
            slots[i].held.append(event)
            return
        case .running: break
        }
        guard var node = slots[i].instance else { return }
        if case .message(let m, let from) = event { log("\(slots[i].name) <- \(from): \(m.kind)") }
        let directives = node.handle(event, now: now)
        slots[i].instance = node
        execute(directives, for: i)
    }

    mutating func execute(_ directives: [Directive], for i: Int) {
        let gen = slots[i].generation
        for d in directives {
            switch d {
            case .broadcast(let a):
                for j in slots.indices where j != i && !blocked.contains(Pair(from: i, to: j)) {
                    if datagramLoss > 0, Double(rng.next() % 10_000) / 10_000 < datagramLoss { continue }
                    queue.push(at: now + randomDelay(), .event(node: j, generation: slots[j].generation, .datagram(a)))
                }
            case .connect(let target):
                queue.push(at: now + randomDelay(), .connect(from: i, generation: gen, target: target))
            case .send(let m, let to):
                guard let j = slots.firstIndex(where: { $0.name == to }), links.contains(Pair(from: i, to: j)) else { continue }
                if blocked.contains(Pair(from: i, to: j)) {
                    let since = cutSince[Pair(from: i, to: j)] ?? now
                    cutSince[Pair(from: i, to: j)] = since
                    if now - since >= config.timing.linkTimeout { abortLink(i, j) }
                    continue
                }
                cutSince[Pair(from: i, to: j)] = nil
                var at = now + randomDelay()
                if let last = linkClock[Pair(from: i, to: j)], at < last { at = last }
                linkClock[Pair(from: i, to: j)] = at
                queue.push(at: at, .event(node: j, generation: slots[j].generation, .message(m, from: slots[i].name)))
            case .persist(let s):
                slots[i].disk = s
            case .runHook(let run):
                log("\(slots[i].name) hook \(run.role.rawValue) epoch \(run.epoch) (\(run.cause.rawValue))")
                slots[i].hookQueue.append(run)
                if slots[i].hookRunning == nil { startNextHook(i) }
            case .notice(let n):
                log(n.description(node: slots[i].name))
            case .wakeUp(let at):
                slots[i].wake = at
                queue.push(at: at, .wake(node: i, generation: gen))
            case .exit(let code):
                log("\(slots[i].name) exits with \(code)")
                exitCodes[slots[i].name] = code
                stop(i, status: .stopped)
                // A leave that was still finishing at the final heal: the node comes back too.
                if healedAt != nil, code == 0 { queue.push(at: now + .milliseconds(10), .fault(.rejoin(i))) }
            case .forgetAnswered, .refuseLink:
                break
            }
        }
    }

    func randomDelayValue(_ rng: inout SplitMix64) -> Duration {
        .microseconds(Int64.random(in: 50...3000, using: &rng))
    }

    mutating func randomDelay() -> Duration { randomDelayValue(&rng) }

    mutating func startNextHook(_ i: Int) {
        guard slots[i].hookRunning == nil, !slots[i].hookQueue.isEmpty, slots[i].status == .running || slots[i].status == .paused else { return }
        let run = slots[i].hookQueue.removeFirst()
        slots[i].hookRunning = (run, now)
        hookLog.append((now, slots[i].name, run))
        if run.role == .master {
            checkMasterHookStart(i, run: run)
            slots[i].masterSince = now
            slots[i].masterEpoch = run.epoch
            if let pf = pendingFailover {
                let d = now - pf.since
                if pf.kind == "crash" { crashFailovers.append(d) } else { leaveHandovers.append(d) }
                pendingFailover = nil
            }
        } else {
            slots[i].masterSince = nil
        }
        let ns = Int64.random(in: 0...options.maximumHookTime.nanosecondsClamped, using: &rng)
        queue.push(at: now + .nanoseconds(ns), .hookDone(node: i, generation: slots[i].generation, id: run.id))
    }

    mutating func connect(from i: Int, target: NodeIdentity) {
        guard let j = slots.firstIndex(where: { $0.name == target.name }), j != i else { return }
        let gen = slots[i].generation
        let cut = blocked.contains(Pair(from: i, to: j)) || blocked.contains(Pair(from: j, to: i))
        switch slots[j].status {
        case .crashed, .stopped:
            if cut {
                queue.push(at: now + config.timing.connectTimeout, .event(node: i, generation: gen, .linkDown(name: target.name, instance: target.instance, .unreachable)))
            } else {
                queue.push(at: now + randomDelay(), .event(node: i, generation: gen, .linkDown(name: target.name, instance: target.instance, .refused)))
            }
        case .paused:
            queue.push(at: now + config.timing.connectTimeout, .event(node: i, generation: gen, .linkDown(name: target.name, instance: target.instance, .unreachable)))
        case .running:
            if cut {
                queue.push(at: now + config.timing.connectTimeout, .event(node: i, generation: gen, .linkDown(name: target.name, instance: target.instance, .unreachable)))
                return
            }
            guard let a = slots[i].instance?.identity, let b = slots[j].instance?.identity else { return }
            links.insert(Pair(from: i, to: j))
            links.insert(Pair(from: j, to: i))
            let t = now + randomDelay()
            queue.push(at: t, .event(node: i, generation: gen, .linkUp(b)))
            queue.push(at: t, .event(node: j, generation: slots[j].generation, .linkUp(a)))
        }
    }

    /// The link between i and j carried nothing acknowledged for the link timeout: both
    /// kernels abort it (each end's own frames go unacknowledged too, or its
    /// acknowledgements are the ones cut), and both cores hear a closed link.
    mutating func abortLink(_ i: Int, _ j: Int) {
        closeLink(i, j)
        log("link \(slots[i].name)–\(slots[j].name) aborted: unacknowledged for \(config.timing.linkTimeout)")
        for (a, b) in [(i, j), (j, i)] {
            guard let peer = slots[b].instance?.identity else { continue }
            queue.push(at: now + randomDelay(), .event(node: a, generation: slots[a].generation, .linkDown(name: peer.name, instance: peer.instance, .closed)))
        }
    }

    /// Forgets the link between i and j, both directions, with any cut it was under.
    mutating func closeLink(_ i: Int, _ j: Int) {
        for pair in [Pair(from: i, to: j), Pair(from: j, to: i)] {
            links.remove(pair)
            cutSince[pair] = nil
        }
    }

    mutating func stop(_ i: Int, status: Status) {
        let old = slots[i].instance?.identity
        slots[i].status = status
        slots[i].generation += 1
        slots[i].hookQueue = []
        slots[i].hookRunning = nil
        slots[i].masterSince = nil
        slots[i].held = []
        slots[i].wake = nil
        for j in slots.indices where links.contains(Pair(from: i, to: j)) {
            closeLink(i, j)
            if let old {
                var at = now + randomDelay()
                if let last = linkClock[Pair(from: i, to: j)], at < last { at = last }
                queue.push(at: at, .event(node: j, generation: slots[j].generation, .linkDown(name: old.name, instance: old.instance, .closed)))
            }
        }
    }

    mutating func start(_ i: Int) {
        guard slots[i].status == .stopped || slots[i].status == .crashed else { return }
        slots[i].generation += 1
        slots[i].status = .running
        let identity = NodeIdentity(
            name: slots[i].name, instance: rng.next(), address: slots[i].address, port: slots[i].port,
            birth: 1_700_000_000_000 + now.nanoseconds / 1_000_000)
        slots[i].instance = QuorumInstance(configuration: nodeConfiguration(), identity: identity, restored: slots[i].disk, now: now, seed: rng.next())
        deliver(.tick, to: i)
    }

    func nodeConfiguration() -> CoreConfiguration {
        var c = config
        if options.plantedBug == .ignoreLease {
            c.timing.leaseDuration = .seconds(3600)
        }
        if options.plantedBug == .ignorePromise {
            c.timing.electionTimeout = c.timing.leaseDuration - .milliseconds(300)
        }
        return c
    }

    func masterIndex() -> Int? {
        slots.indices.first { slots[$0].status == .running && slots[$0].instance?.isMaster(now: now) == true }
    }

    mutating func apply(_ fault: Fault) {
        switch fault {
        case .crash(var i):
            if i < 0 { i = masterIndex() ?? 0 }
            guard slots[i].status == .running || slots[i].status == .paused else { return }
            faultLog.append("\(now) crash \(slots[i].name)")
            if masterIndex() == i { pendingFailover = (now, "crash", slots[i].name) }
            stop(i, status: .crashed)
        case .restart(var i):
            if i < 0 { i = slots.indices.first { slots[$0].status == .crashed } ?? 0 }
            guard slots[i].status == .crashed else { return }
            faultLog.append("\(now) restart \(slots[i].name)")
            start(i)
        case .pause(let i):
            guard slots[i].status == .running else { return }
            faultLog.append("\(now) pause \(slots[i].name)")
            slots[i].status = .paused
        case .resume(let i):
            guard slots[i].status == .paused else { return }
            faultLog.append("\(now) resume \(slots[i].name)")
            slots[i].status = .running
            let held = slots[i].held
            slots[i].held = []
            for e in held { deliver(e, to: i) }
            deliver(.tick, to: i)
            startNextHook(i)
        case .leave(let i):
            guard slots[i].status == .running else { return }
            faultLog.append("\(now) leave \(slots[i].name)")
            if masterIndex() == i { pendingFailover = (now, "leave", slots[i].name) }
            deliver(.leaveRequested, to: i)
        case .rejoin(let i):
            guard slots[i].status == .stopped else { return }
            if now > .zero { faultLog.append("\(now) start \(slots[i].name)") }
            start(i)
        case .partition(let groups):
            faultLog.append("\(now) partition \(groups.map { $0.map { slots[$0].name }.joined(separator: ",") }.joined(separator: " | "))")
            blocked = []
            for (gi, g) in groups.enumerated() {
                for (hi, h) in groups.enumerated() where gi != hi {
                    for a in g { for b in h { blocked.insert(Pair(from: a, to: b)) } }
                }
            }
        case .oneWay(let from, let to):
            faultLog.append("\(now) one-way: \(slots[to].name) stops hearing \(slots[from].name)")
            blocked.insert(Pair(from: from, to: to))
        case .heal:
            if !blocked.isEmpty { faultLog.append("\(now) heal") }
            blocked = []
        case .datagramLoss(let p):
            faultLog.append("\(now) datagram loss \(Int(p * 100))%")
            datagramLoss = p
        case .finalHeal:
            faultLog.append("\(now) final heal: every node back, network whole")
            blocked = []
            datagramLoss = 0
            for i in slots.indices {
                switch slots[i].status {
                case .paused: apply(.resume(i))
                case .crashed, .stopped: start(i)
                case .running: break
                }
            }
            healedAt = now
        }
    }

    // MARK: Checks

    mutating func violation(_ rule: String, _ detail: String) {
        violations.append(Violation(seed: seed, time: now, rule: rule, detail: detail))
    }

    /// (a) one master per epoch; (b) never two nodes holding the master role at one instant.
    mutating func checkSafety() {
        var holders: [String] = []
        for s in slots where s.status == .running || s.status == .paused {
            guard let node = s.instance, node.isMaster(now: now), let epoch = node.heldEpoch else { continue }
            holders.append("\(s.name)(epoch \(epoch))")
            if let other = epochMasters[epoch], other != s.name {
                violation("two masters in one epoch", "\(other) and \(s.name) both master of epoch \(epoch)")
            }
            epochMasters[epoch] = s.name
        }
        if holders.count > 1 { violation("two masters at once", holders.joined(separator: ", ")) }
    }

    /// (d) a master hook never starts while another node's master interval is open, nor while
    /// the slave hook of a planned step-down still runs.
    mutating func checkMasterHookStart(_ i: Int, run: HookRun) {
        for j in slots.indices where j != i {
            let s = slots[j]
            if let since = s.masterSince, s.status == .running || s.status == .paused {
                let leaseOver = s.status == .paused && !(s.instance?.isMaster(now: now) ?? false)
                if !leaseOver {
                    violation("overlapping master intervals", "\(slots[i].name) starts its master hook for epoch \(run.epoch) while \(s.name) is master since \(since) (epoch \(s.masterEpoch))")
                }
            }
            if let (r, _) = s.hookRunning, r.previousRole == .master, r.cause == .handover || r.cause == .leaving {
                violation("planned handover overlaps", "\(slots[i].name) starts its master hook for epoch \(run.epoch) while \(s.name)'s step-down hook still runs")
            }
        }
    }

    /// Every slot runs and names the same master, which holds its lease; no one discovering
    /// or without quorum.
    func agreed() -> Bool {
        guard slots.allSatisfy({ $0.status == .running }) else { return false }
        let views = slots.compactMap { $0.instance?.currentMaster(now: now)?.name }
        guard views.count == slots.count, Set(views).count == 1, masterIndex() != nil else { return false }
        let roles = slots.compactMap { $0.instance?.role }
        return roles.filter { $0 == .master }.count == 1 && roles.allSatisfy { $0 == .master || $0 == .slave }
    }

    /// (c) after the final heal and `settle`, every node agrees on one master.
    mutating func checkLiveness() {
        // Nodes that dispatched themselves on quorum loss after the final heal (policy
        // `dispatch`) have left for good; the check is about the nodes still running.
        let running = slots.filter { $0.status == .running }
        let stoppedByPolicy = slots.filter { $0.status == .stopped && exitCodes[$0.name] == 3 }
        // Everyone may have left: with every node in a minority at once, all of them dispatch.
        if running.isEmpty && stoppedByPolicy.count == slots.count { return }
        guard running.count + stoppedByPolicy.count == slots.count else {
            violation("liveness", "nodes missing after the final heal: \(slots.map { "\($0.name)=\($0.status)" })")
            return
        }
        let masters = running.compactMap { $0.instance?.currentMaster(now: now) }
        let names = Set(masters.map(\.name))
        if masters.count != running.count || names.count != 1 {
            let view = running.map { s in "\(s.name):\(s.instance?.role.rawValue ?? "-")→\(s.instance?.currentMaster(now: now)?.name ?? "none")" }
            violation("liveness", "no agreement on one master \(options.settle) after healing: \(view.joined(separator: " "))")
            for s in running { log("state: \(s.instance?.debugSummary(now: now) ?? "-")") }
            return
        }
        if masterIndex() == nil { violation("liveness", "the agreed master \(names.first!) does not hold a lease") }
        let roles = running.compactMap { $0.instance?.role }
        if roles.filter({ $0 == .master }).count != 1 || roles.contains(.discovering) || roles.contains(.noQuorum) {
            violation("liveness", "roles after healing: \(zip(running.map(\.name), roles.map(\.rawValue)).map { "\($0)=\($1)" })")
        }
        if let t = settleTime, t > options.agreementBound {
            violation("liveness", "every node agreed on one master only \(t) after the final heal (bound \(options.agreementBound))")
        }
    }
}

final class TraceBuffer: @unchecked Sendable {
    var lines: [String] = []
}

// MARK: - A small binary heap ordered by (time, insertion order)

struct EventQueue<Element> {
    private var heap: [(time: Instant, seq: UInt64, element: Element)] = []
    private var counter: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var peekTime: Instant? { heap.first?.time }

    mutating func push(at time: Instant, _ element: Element) {
        counter += 1
        heap.append((time, counter, element))
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if less(i, parent) { heap.swapAt(i, parent); i = parent } else { break }
        }
    }

    mutating func pop() -> (Instant, Element)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count, less(l, m) { m = l }
            if r < heap.count, less(r, m) { m = r }
            if m == i { break }
            heap.swapAt(i, m)
            i = m
        }
        return (top.time, top.element)
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        heap[a].time < heap[b].time || (heap[a].time == heap[b].time && heap[a].seq < heap[b].seq)
    }
}

extension Instant {
    static func - (a: Instant, d: Duration) -> Instant { Instant(nanoseconds: a.nanoseconds - d.nanosecondsClamped) }
}
