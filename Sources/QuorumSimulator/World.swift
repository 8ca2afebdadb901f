import QuorumCore

/// The simulated world: processes on hosts (slots), one global time, and one queue of
/// everything that is due. Each process sees only its host's clock (`NodeClock`).
struct World {
    enum Status: Equatable { case running, paused, suspended, crashed, stopped }

    enum Action {
        case event(node: Int, generation: Int, Event)
        /// A frame on the link `link` (dropped if the receiver refused that link).
        case frame(node: Int, generation: Int, link: UInt64, Message, from: String)
        case wake(node: Int, generation: Int, token: UInt64)
        case hookDone(node: Int, generation: Int, id: UInt64)
        case fsyncDone(node: Int, generation: Int)
        case connect(from: Int, generation: Int, target: NodeIdentity)
        case fault(Fault)
        case agreementDue(token: Int)
        /// Process `node`'s health check reports its verdict (see WorldPreferences.swift).
        case checkResult(node: Int, generation: Int)
    }

    struct Pair: Hashable { var from: Int, to: Int }

    let options: SimulationOptions
    let seed: UInt64
    var rng: SplitMix64
    /// Global simulated time.
    var now = Instant.zero
    var queue = EventQueue<Action>()
    var slots: [Slot] = []
    var config: CoreConfiguration
    var shape = ""
    // The network (see Network.swift).
    var blocked: Set<Pair> = []
    var datagramLoss = 0.0
    var linkClock: [Pair: Instant] = [:]
    var links: [Pair: UInt64] = [:]
    var nextLinkID: UInt64 = 1
    var refusedLinks: [UInt64: Int] = [:]
    var cutSince: [Pair: Instant] = [:]
    /// The last global instant at which each direction was cut.
    var lastBlocked: [Pair: Instant] = [:]
    /// When the world first had a master: nodes that start after it and link only among
    /// themselves form a new cluster apart (see `isLoneNewCluster`).
    var firstMasterAt: Instant? = nil
    /// Every process started so far, by instance.
    var processes: [UInt64: ProcessRecord] = [:]
    // Checks and records.
    var checker: SafetyChecker
    var trace = Trace()
    var eventCount = 0
    var faultWindowEnd = Instant.zero
    var healedAt: Instant? = nil
    var settleTime: Duration? = nil
    var crashFailovers: [Duration] = []
    var leaveHandovers: [Duration] = []
    var pendingFailover: (since: Instant, kind: String, from: String)? = nil
    var hookLog: [(time: Instant, node: String, run: HookRun)] = []
    var whole = Wholeness()
    /// Every cluster a master has founded so far, and those founded apart (docs/protocol.md,
    /// "A brand-new cluster whose nodes start on both sides of a partition").
    var knownClusters: Set<UInt64> = []
    var apartFoundings: [UInt64: ApartFounding] = [:]

    init(options: SimulationOptions, seed: UInt64, rng: SplitMix64, configuration: CoreConfiguration, names: [String], ports: [UInt16]) {
        self.options = options
        self.seed = seed
        self.rng = rng
        config = configuration
        checker = SafetyChecker(tieBreaker: configuration.tieBreaker)
        trace.enabled = options.trace
        for (i, name) in names.enumerated() {
            slots.append(Slot(name: name, port: ports[i], address: "10.0.0.\(i + 1)", clock: .ideal))
        }
        primaryCount = slots.count
    }

    /// The cluster's own hosts come first; second processes with a member's name follow.
    var primaryCount = 0
    var primaries: Range<Int> { 0..<primaryCount }

    func pid(_ i: Int) -> ProcessID {
        ProcessID(slot: i, name: slots[i].name, instance: slots[i].instance?.identity.instance ?? 0)
    }

    func local(_ i: Int) -> Instant { slots[i].clock.local(now) }

    /// Host `i`'s wall clock now, in milliseconds since 1970.
    func wall(_ i: Int) -> Int64 { 1_700_000_000_000 + now.nanoseconds / 1_000_000 + slots[i].wallOffset }

    /// A line of the trace. Call it as `if trace.enabled { log(…) }`, so that the line is
    /// built only when tracing.
    mutating func log(_ line: String) {
        trace.add(now, line)
    }

    // MARK: Running

    mutating func run() {
        let end = Instant.zero + options.duration
        step(until: end)
        if checker.isClean { checkLiveness() }
    }

    /// Processes everything due up to `end`, checking safety after every step.
    mutating func step(until end: Instant) {
        while let next = queue.peekTime, next <= end, let (time, action) = queue.pop() {
            now = time
            eventCount += 1
            perform(action)
            observe()
            if !checker.isClean { break }
        }
        if checker.isClean { now = max(now, end) }
    }

    mutating func perform(_ action: Action) {
        switch action {
        case .event(let i, let gen, let event):
            guard slots[i].generation == gen else { return }
            deliver(event, to: i)
        case .frame(let i, let gen, let link, let message, let from):
            guard slots[i].generation == gen, refusedLinks[link] != i else { return }
            deliver(.message(message, from: from), to: i)
        case .wake(let i, let gen, let token):
            guard slots[i].generation == gen, slots[i].wakeToken == token else { return }
            slots[i].wakeAt = nil
            deliver(.tick, to: i)
        case .hookDone(let i, let gen, let id):
            guard slots[i].generation == gen else { return }
            slots[i].hooks.running = nil
            slots[i].hooks.queue.finish(id)
            deliver(.hookFinished(id), to: i)
            pumpHooks(i)
        case .fsyncDone(let i, let gen):
            guard slots[i].generation == gen else { return }
            if let s = slots[i].pendingDisk { makeDurable(s, on: i) }
            slots[i].pendingDisk = nil
            slots[i].busyUntil = nil
            proceed(i)
        case .connect(let from, let gen, let target):
            guard slots[from].generation == gen, slots[from].isAlive else { return }
            connect(from: from, target: target)
        case .fault(let f):
            apply(f)
        case .agreementDue(let token):
            agreementDue(token)
        case .checkResult(let i, let gen):
            guard slots[i].generation == gen else { return }
            reportHealth(i)
        }
    }

    /// Hands an event to the process, or holds it while the process cannot take it.
    mutating func deliver(_ event: Event, to i: Int) {
        switch slots[i].status {
        case .crashed, .stopped: return
        case .paused, .suspended:
            slots[i].held.append(event)
        case .running:
            if slots[i].busyUntil != nil { slots[i].held.append(event) } else { handle(event, i) }
        }
    }

    mutating func handle(_ event: Event, _ i: Int) {
        guard var node = slots[i].instance else { return }
        let t = local(i)
        if trace.enabled, case .message(let m, let from) = event { log("\(slots[i].name) <- \(from): \(m.kind)") }
        let directives = node.handle(event, now: t, wallClock: wall(i))
        slots[i].instance = node
        let claim = node.currentMaster(now: t)
        if claim != slots[i].followed {
            slots[i].followed = claim
            slots[i].followedSince = now
        }
        if case .linkUp(let peer, _) = event, !directives.contains(where: { if case .refuseLink = $0 { true } else { false } }) {
            processes[node.identity.instance]?.linked.insert(peer.instance)
            if processes[node.identity.instance]?.firstLinked[peer.instance] == nil {
                processes[node.identity.instance]?.firstLinked[peer.instance] = now
            }
        }
        if node.heldEpoch != nil, node.membershipList.cluster != 0, !knownClusters.contains(node.membershipList.cluster) {
            noteFounding(i)
        }
        // The status epoch, read after every event that changed something visible (a quiet
        // heartbeat changes no epoch).
        if directives.contains(where: \.changesState) {
            checker.epochReported(at: now, by: pid(i), epoch: node.fencingEpoch, what: "status")
        }
        // When a candidacy took its epoch: the core reads the wall clock now, whatever fsync
        // then delays.
        for case .notice(.candidacyStarted(let epoch, _)) in directives { checker.epochTaken(at: now, by: pid(i), epoch: epoch) }
        execute(directives[...], for: i)
    }

    /// The process is free again (resumed, or its fsync completed): it carries out what it
    /// was doing, then the events that waited, then its hooks.
    mutating func proceed(_ i: Int) {
        let gen = slots[i].generation
        func free(_ w: World) -> Bool { w.slots[i].generation == gen && w.slots[i].status == .running && w.slots[i].busyUntil == nil }
        guard free(self) else { return }
        if !slots[i].pendingDirectives.isEmpty {
            let rest = slots[i].pendingDirectives
            slots[i].pendingDirectives = []
            execute(rest[...], for: i)
        }
        while free(self), !slots[i].held.isEmpty {
            handle(slots[i].held.removeFirst(), i)
        }
        if free(self) { pumpHooks(i) }
    }

    mutating func execute(_ directives: ArraySlice<Directive>, for i: Int) {
        let gen = slots[i].generation
        for (k, d) in zip(directives.indices, directives) {
            guard slots[i].generation == gen else { return }
            switch d {
            case .broadcast(let a):
                broadcast(a, from: i)
            case .connect(let target):
                queue.push(at: now + randomDelay(), .connect(from: i, generation: gen, target: target))
            case .send(let m, let to):
                if case .voteReply(let epoch, true) = m { checker.voteGranted(at: now, by: pid(i), epoch: epoch, candidate: to) }
                send(m, to: to, from: i)
            case .persist(let s):
                let took = fsyncTime(i)
                if took > .zero {
                    if trace.enabled { log("\(slots[i].name) fsync takes \(took)") }
                    slots[i].pendingDisk = s
                    slots[i].busyUntil = now + took
                    // A process stuck in fsync is not running freely until it is done.
                    slots[i].disturbedAt = max(slots[i].disturbedAt, now + took)
                    slots[i].pendingDirectives = Array(directives[(k + 1)...])
                    queue.push(at: now + took, .fsyncDone(node: i, generation: gen))
                    return
                }
                makeDurable(s, on: i)
            case .runHook(let run):
                if trace.enabled { log("\(slots[i].name) queues hook \(run.role.rawValue) epoch \(run.epoch) (\(run.cause.rawValue))") }
                if options.plantedHole == .staleMasterHook { slots[i].hooks.ungated.append(run) } else { slots[i].hooks.queue.enqueue(run) }
                pumpHooks(i)
            case .notice(let n):
                if trace.enabled { log(n.description(node: slots[i].name)) }
                if case .steppingDown(let epoch, let cause) = n, cause == .leaseExpired || cause == .quorumLost {
                    checkStepDown(of: i, epoch: epoch, cause: cause)
                }
            case .wakeUp(let at):
                slots[i].wakeAt = at
                scheduleWake(i)
            case .exit(let code):
                if trace.enabled { log("\(slots[i].name) exits with \(code)") }
                slots[i].lastExit = code
                if code == 0 || code == 3, let p = slots[i].instance?.identity.instance { processes[p]?.left = true }
                if code == 2 { slots[i].noRestart = true }
                stop(i, status: .stopped)
                // A leave that was still finishing at the final heal, or a minority that
                // dispatched itself (exit 3) while the others were coming back: the operator
                // starts it again, as the final heal brings every node back.
                if healedAt != nil, code == 0 || code == 3, slots[i].isPrimary { queue.push(at: now + .milliseconds(10), .fault(.start(i))) }
                // A member refused its name after the final heal (its peers had not yet seen an
                // impostor's links close): the operator reads the error and starts it again.
                if healedAt != nil, code == 2, slots[i].isPrimary { queue.push(at: now + .seconds(1), .fault(.start(i))) }
                return
            case .forgetAnswered(let name, let outcome):
                if trace.enabled { log("\(slots[i].name) answers forget \(name): \(outcome)") }
            case .stepDownAnswered(let id, let answer):
                if trace.enabled { log("\(slots[i].name) answers step-down \(id): \(answer)") }
            case .refuseLink(let identity, let refusal):
                refuseLink(identity, refusal, by: i)
            }
        }
    }

    /// Pushes the wake-up the core asked for at the global time the host's clock reaches it
    /// (none while the clock is stopped: it is pushed again when the clock starts).
    mutating func scheduleWake(_ i: Int) {
        slots[i].wakeToken &+= 1
        guard let at = slots[i].wakeAt, let g = slots[i].clock.global(reaching: at) else { return }
        queue.push(at: max(g, now), .wake(node: i, generation: slots[i].generation, token: slots[i].wakeToken))
    }

    /// A write reached the disk. A vote counts from here (a vote whose write never completed
    /// was never sent, and a restart knows nothing of it): a candidate's own vote, or a grant.
    mutating func makeDurable(_ state: PersistentState, on i: Int) {
        slots[i].disk = state
        if let c = state.votedFor, state.votedEpoch > 0 { checker.voteGranted(at: now, by: pid(i), epoch: state.votedEpoch, candidate: c) }
    }

    // MARK: Processes

    mutating func stop(_ i: Int, status: Status) {
        let old = slots[i].instance?.identity
        if status == .crashed, let s = slots[i].pendingDisk, rng.next() % 2 == 0 {
            makeDurable(s, on: i)  // the interrupted write had reached the disk, or not
        }
        slots[i].status = status
        slots[i].generation += 1
        slots[i].hooks = HookSlot()
        slots[i].held = []
        slots[i].pendingDisk = nil
        slots[i].pendingDirectives = []
        slots[i].busyUntil = nil
        slots[i].wakeAt = nil
        for j in slots.indices where links[Pair(from: i, to: j)] != nil {
            closeLink(i, j)
            if let old {
                var at = now + randomDelay()
                if let last = linkClock[Pair(from: i, to: j)], at < last { at = last }
                queue.push(at: at, .event(node: j, generation: slots[j].generation, .linkDown(name: old.name, instance: old.instance, .closed)))
            }
        }
    }

    mutating func start(_ i: Int, wipe: Bool = false) {
        guard slots[i].status == .stopped || slots[i].status == .crashed else { return }
        slots[i].generation += 1
        slots[i].status = .running
        slots[i].goneForGood = false
        slots[i].runningSince = now
        slots[i].lastExit = nil
        if wipe { slots[i].disk = nil }
        slots[i].forgotten = false
        slots[i].followed = nil
        let identity = NodeIdentity(
            name: slots[i].name, instance: rng.next(), address: slots[i].address, port: slots[i].port,
            birth: slots[i].birthOverride ?? wall(i))
        processes[identity.instance] = ProcessRecord(
            slot: i, name: slots[i].name, startedAsNewcomer: (slots[i].disk?.membership?.stamp ?? .bootstrap) == .bootstrap, since: now)
        if wipe { slots[i].standby = false }  // the standby file lives in the state directory
        slots[i].reportedHealth = nil
        slots[i].instance = QuorumInstance(configuration: nodeConfiguration(i), identity: identity, restored: slots[i].disk, now: local(i), seed: rng.next())
        deliver(.tick, to: i)
        scheduleCheckResult(i)
    }

    func nodeConfiguration(_ i: Int) -> CoreConfiguration {
        var c = config
        c.eligibility = eligibility(of: i)
        switch options.plantedBug {
        case .ignoreLease?: c.timing.leaseDuration = .seconds(3600)
        case .ignorePromise?: c.timing.electionTimeout = c.timing.leaseDuration - .milliseconds(300)
        case nil: break
        }
        if let hole = options.plantedHole, hole != .stoppedClock, hole != .staleMasterHook { c.plantedHole = hole }
        return c
    }

    // MARK: Drawn durations

    mutating func randomDelay() -> Duration { .microseconds(Int64.random(in: 50...3000, using: &rng)) }

    mutating func fsyncTime(_ i: Int) -> Duration {
        guard let until = slots[i].slowDiskUntil, now < until else { return .zero }
        switch rng.next() % 10 {
        case 0..<5: return .milliseconds(Int64.random(in: 0...20, using: &rng))
        case 5..<9: return .milliseconds(Int64.random(in: 20...400, using: &rng))
        default: return .milliseconds(Int64.random(in: 1000...3000, using: &rng))
        }
    }

    var result: ScheduleResult {
        ScheduleResult(
            seed: seed,
            violations: checker.findings.map { Violation(seed: seed, time: $0.time, rule: $0.rule.rawValue, detail: $0.detail) },
            faults: trace.faults, faultCounts: trace.counts, trace: trace.lines, shape: shape,
            settleTime: settleTime, events: eventCount, crashFailovers: crashFailovers,
            leaveHandovers: leaveHandovers, agreementChecks: whole.checks)
    }
}

extension Directive {
    /// Anything but the traffic and timers of a quiet cluster.
    var changesState: Bool {
        switch self {
        case .persist, .notice, .runHook, .exit, .refuseLink, .forgetAnswered, .stepDownAnswered: true
        case .broadcast, .connect, .send, .wakeUp: false
        }
    }
}
