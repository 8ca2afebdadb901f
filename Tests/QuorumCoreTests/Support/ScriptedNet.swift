import QuorumCore

/// A small, fully scripted network for replaying one exact event sequence against the real
/// core: processes (two may share a name), each with its own clock, links that a partition
/// cuts at once (frames in flight included), hooks that take as long as a test says, disks a
/// test can wipe. Every frame takes 1 ms. After every step it judges from the global view:
/// two processes that each hold the master role by their own clock at one global instant,
/// and a master hook started by a process that does not hold that epoch's lease right then.
struct ScriptedNet {
    struct Process {
        var identity: NodeIdentity
        var core: QuorumInstance?
        var running = true
        var suspended = false
        /// The clock keeps counting while the process is suspended (CLOCK_BOOTTIME), or not
        /// (CLOCK_MONOTONIC on a suspended host: the clock-stop hole).
        var clockCountsSuspend = true
        var clockBase: Int64 = 0  // local nanoseconds at `syncedAt`
        var syncedAt: Int64 = 0  // global nanoseconds
        var held: [Event] = []
        var disk: PersistentState?
        var hooks = HookQueue()
        var hookDuration: Duration = .milliseconds(1)
        var wakeAt: Int64? = nil  // global
        var exitCode: Int32? = nil
        var side = 0
    }

    enum Action {
        case deliver(to: Int, Event)
        /// A frame from `from`, dropped on arrival when a partition now lies between them.
        case frame(to: Int, from: Int, Message)
        case wake(Int)
        case hookDone(Int, UInt64)
    }

    var configuration: CoreConfiguration
    var processes: [Process] = []
    var now: Int64 = 0  // global nanoseconds
    var queue: [(at: Int64, seq: Int, action: Action)] = []
    var seq = 0
    var links: Set<[Int]> = []  // sorted pairs
    /// [receiver, sender]: the receiver's core took the link (a refused link delivers nothing).
    var accepted: Set<[Int]> = []
    /// Hooks skip the core's lease gate (the stale-hook hole).
    var gateHooks = true
    var violations: [String] = []
    var hookLog: [(time: Int64, process: Int, run: HookRun)] = []
    /// Answers to step-down requests, by the process asked.
    var stepDownAnswers: [(time: Int64, process: Int, id: UInt64, answer: StepDownAnswer)] = []
    var masterEpochs: [UInt64: Int] = [:]
    var traceEnabled = false
    var trace: [String] = []

    init(configuration: CoreConfiguration = CoreConfiguration(cluster: "scripted")) {
        self.configuration = configuration
    }

    // MARK: Processes

    /// Starts a process; returns its index. `birth` orders age (smaller is older).
    @discardableResult
    mutating func start(_ name: String, birth: Int64, port: UInt16, restored: PersistentState?? = nil, side: Int = 0,
                        configure: (inout CoreConfiguration) -> Void = { _ in }) -> Int {
        let index = processes.count
        let identity = NodeIdentity(name: name, instance: UInt64(index + 1) * 1000 + UInt64(port), address: "10.0.0.\(index + 1)", port: port, birth: birth)
        var c = configuration
        configure(&c)
        var p = Process(identity: identity, side: side)
        p.clockBase = 5_000_000_000 + Int64(index) * 777_000_000
        p.syncedAt = now
        let disk: PersistentState? = restored ?? PersistentState()
        p.core = QuorumInstance(configuration: c, identity: identity, restored: disk, now: Instant(nanoseconds: p.clockBase), seed: UInt64(index))
        p.disk = disk
        processes.append(p)
        push(at: now, .deliver(to: index, .tick))
        return index
    }

    /// Restarts a stopped process under its name with a fresh instance, its disk kept or wiped.
    @discardableResult
    mutating func restart(_ i: Int, wipe: Bool = false, birth: Int64, configure: (inout CoreConfiguration) -> Void = { _ in }) -> Int {
        let old = processes[i]
        return start(old.identity.name, birth: birth, port: old.identity.port, restored: .some(wipe ? nil : old.disk), side: old.side, configure: configure)
    }

    mutating func kill(_ i: Int) {
        processes[i].running = false
        processes[i].hooks.clear()
        accepted = accepted.filter { !$0.contains(i) }
        for pair in links where pair.contains(i) {
            links.remove(pair)
            let other = pair[0] == i ? pair[1] : pair[0]
            push(at: now + 1_000_000, .deliver(to: other, .linkDown(name: processes[i].identity.name, instance: processes[i].identity.instance, .closed)))
        }
    }

    mutating func suspend(_ i: Int) {
        sync(i)
        processes[i].suspended = true
    }

    mutating func resume(_ i: Int) {
        sync(i)
        processes[i].suspended = false
        let held = processes[i].held
        processes[i].held = []
        for e in held { handle(e, on: i) }
        handle(.tick, on: i)
        startHook(i)
    }

    /// Moves processes to sides; only processes on one side hear each other. Links across
    /// sides carry nothing more (frames in flight are dropped on arrival).
    mutating func partition(_ sides: [Int: Int]) {
        for (i, s) in sides { processes[i].side = s }
    }

    mutating func heal() {
        for i in processes.indices { processes[i].side = 0 }
    }

    func local(_ i: Int) -> Instant {
        let p = processes[i]
        let elapsed = p.suspended && !p.clockCountsSuspend ? 0 : now - p.syncedAt
        return Instant(nanoseconds: p.clockBase + elapsed)
    }

    private mutating func sync(_ i: Int) {
        processes[i].clockBase = local(i).nanoseconds
        processes[i].syncedAt = now
    }

    func core(_ i: Int) -> QuorumInstance { processes[i].core! }

    func isMaster(_ i: Int) -> Bool {
        processes[i].running && processes[i].core?.isMaster(now: local(i)) == true
    }

    var masters: [Int] { processes.indices.filter(isMaster) }

    func hooks(of i: Int) -> [HookRun] { hookLog.filter { $0.process == i }.map(\.run) }

    // MARK: Running

    mutating func run(for duration: Duration) {
        let end = now + duration.nanosecondsClamped
        while step(until: end) {}
        now = end
        check()
    }

    /// Runs event by event until `condition` holds (checked after every event, so a test can
    /// act between two frames); `false` if it did not within `limit`.
    @discardableResult
    mutating func run(until limit: Duration, _ condition: (ScriptedNet) -> Bool) -> Bool {
        let end = now + limit.nanosecondsClamped
        while !condition(self) {
            if !step(until: end) {
                now = end
                return condition(self)
            }
        }
        return true
    }

    /// Carries out the next event due by `end`; `false` when there is none.
    private mutating func step(until end: Int64) -> Bool {
        guard let next = queue.min(by: { ($0.at, $0.seq) < ($1.at, $1.seq) }), next.at <= end else { return false }
        queue.removeAll { $0.seq == next.seq }
        now = next.at
        perform(next.action)
        check()
        return true
    }

    private mutating func push(at t: Int64, _ action: Action) {
        seq += 1
        queue.append((t, seq, action))
    }

    private mutating func perform(_ action: Action) {
        switch action {
        case .deliver(let i, let event):
            handle(event, on: i)
        case .frame(let i, let from, let message):
            guard processes[i].side == processes[from].side else { return }
            handle(.message(message, from: processes[from].identity.name), on: i)
        case .wake(let i):
            guard let w = processes[i].wakeAt, w <= now else { return }
            processes[i].wakeAt = nil
            handle(.tick, on: i)
        case .hookDone(let i, let id):
            guard processes[i].running else { return }
            processes[i].hooks.finish(id)
            handle(.hookFinished(id), on: i)
            startHook(i)
        }
    }

    mutating func handle(_ event: Event, on i: Int) {
        guard processes[i].running, var core = processes[i].core else { return }
        if processes[i].suspended {
            processes[i].held.append(event)
            return
        }
        let directives = core.handle(event, now: local(i))
        processes[i].core = core
        if traceEnabled {
            for d in directives {
                switch d {
                case .notice(let n): trace.append("\(now / 1_000_000)ms #\(i) \(n.description(node: processes[i].identity.name))")
                case .refuseLink(let id, let r): trace.append("\(now / 1_000_000)ms #\(i) refuses \(id) \(r)")
                case .exit(let c): trace.append("\(now / 1_000_000)ms #\(i) exits \(c)")
                default: break
                }
            }
        }
        for d in directives { carryOut(d, from: i) }
        // A link the core did not refuse is installed: frames on it now reach the core.
        if case .linkUp(let id, _) = event, let j = processes.indices.first(where: { processes[$0].identity == id }),
           !directives.contains(where: { if case .refuseLink(id, _) = $0 { true } else { false } }) {
            // It replaces the link to any other process of that name, as the daemon's link table does.
            accepted = accepted.filter { !($0[0] == i && $0[1] != j && processes[$0[1]].identity.name == id.name) }
            accepted.insert([i, j])
        }
    }

    /// The process named `name` whose link `i` has taken (at most one per name).
    /// The protocol versions process `i` speaks, as its link's first frame says.
    private func speaks(_ i: Int) -> ProtocolRange {
        ProtocolRange(lowest: WireFormat.lowestVersion, highest: processes[i].core?.configuration.protocolVersion ?? WireFormat.version)
    }

    private func peer(of i: Int, named name: String) -> Int? {
        links.filter { $0.contains(i) }.map { $0[0] == i ? $0[1] : $0[0] }
            .first { processes[$0].identity.name == name && accepted.contains([i, $0]) }
    }

    private mutating func carryOut(_ d: Directive, from i: Int) {
        let me = processes[i].identity
        switch d {
        case .broadcast(let a):
            for j in processes.indices where j != i && processes[j].running && processes[j].side == processes[i].side {
                push(at: now + 1_000_000, .deliver(to: j, .datagram(a)))
            }
        case .connect(let target):
            let j = processes.indices.last { processes[$0].identity.name == target.name && processes[$0].identity.instance == target.instance }
            if let j, processes[j].side == processes[i].side {
                if processes[j].running {
                    links.insert([min(i, j), max(i, j)])
                    push(at: now + 1_000_000, .deliver(to: i, .linkUp(processes[j].identity, speaks: speaks(j))))
                    push(at: now + 1_000_000, .deliver(to: j, .linkUp(me, speaks: speaks(i))))
                } else {
                    push(at: now + 1_000_000, .deliver(to: i, .linkDown(name: target.name, instance: target.instance, .refused)))
                }
            } else {
                push(at: now + 500_000_000, .deliver(to: i, .linkDown(name: target.name, instance: target.instance, .unreachable)))
            }
        case .send(let message, let to):
            guard let j = peer(of: i, named: to), processes[j].side == processes[i].side, accepted.contains([j, i]) else { return }
            push(at: now + 1_000_000, .frame(to: j, from: i, message))
        case .refuseLink(let id, let refusal):
            guard let j = processes.indices.first(where: { processes[$0].identity == id }) else { return }
            links.remove([min(i, j), max(i, j)])
            accepted.remove([i, j])
            accepted.remove([j, i])
            if case .nameTaken(let holder) = refusal {
                push(at: now + 1_000_000, .deliver(to: j, .message(.nameTaken(holder: holder), from: me.name)))
            }
            push(at: now + 1_000_000, .deliver(to: j, .linkDown(name: me.name, instance: me.instance, .closed)))
        case .persist(let state):
            processes[i].disk = state
        case .runHook(let run):
            processes[i].hooks.enqueue(run)
            startHook(i)
        case .wakeUp(let at):
            let global = now + (at.nanoseconds - local(i).nanoseconds)
            processes[i].wakeAt = global
            push(at: max(global, now), .wake(i))
        case .exit(let code):
            processes[i].exitCode = code
            kill(i)
        case .stepDownAnswered(let id, let answer):
            stepDownAnswers.append((now, i, id, answer))
        case .notice, .forgetAnswered:
            break
        }
    }

    private mutating func startHook(_ i: Int) {
        guard processes[i].running, !processes[i].suspended, let core = processes[i].core else { return }
        let at = local(i)
        let gate = gateHooks
        let next: HookQueue.Next
        if gate {
            next = processes[i].hooks.next { core.mayStartHook($0, now: at) }
        } else {
            next = processes[i].hooks.nextIgnoringStaleness()
        }
        for (run, _) in next.skipped { push(at: now, .deliver(to: i, .hookFinished(run.id))) }
        guard let run = next.start else { return }
        hookLog.append((now, i, run))
        if run.role == .master {
            if !isMaster(i) || core.heldEpoch != run.epoch {
                violations.append("\(processes[i].identity.name)#\(i) starts its master hook for epoch \(run.epoch) outside its lease")
            }
            for j in masters where j != i {
                violations.append("\(processes[i].identity.name)#\(i) starts its master hook while \(processes[j].identity.name)#\(j) is master")
            }
        }
        push(at: now + processes[i].hookDuration.nanosecondsClamped, .hookDone(i, run.id))
    }

    private mutating func check() {
        let holders = masters
        if holders.count > 1 {
            let text = holders.map { "\(processes[$0].identity.name)#\($0)(epoch \(core($0).heldEpoch ?? 0))" }.joined(separator: ", ")
            let line = "two masters at once: \(text)"
            if violations.last != line { violations.append(line) }
        }
        for i in holders {
            let epoch = core(i).heldEpoch ?? 0
            if let other = masterEpochs[epoch], other != i {
                violations.append("epoch \(epoch) held by #\(other) and #\(i)")
            }
            if masterEpochs[epoch] == nil, let highest = masterEpochs.keys.max(), highest >= epoch {
                violations.append("#\(i) master of epoch \(epoch) after #\(masterEpochs[highest]!) was master of epoch \(highest)")
            }
            masterEpochs[epoch] = i
        }
    }
}

extension HookQueue {
    /// The queue without the stale-hook rule (the hole): the oldest queued hook, always.
    mutating func nextIgnoringStaleness() -> Next {
        next(mayStart: { _ in true }, skippingOlder: false)
    }
}
