import QuorumCore

/// Faults, and how a schedule draws them from its seed.
enum Fault {
    /// `-1`: whoever is master at that moment.
    case crash(Int)
    /// `-1`: the first crashed node that may be restarted.
    case restart(Int, wipe: Bool)
    case pause(Int), suspend(Int), resume(Int)
    case leave(Int)
    /// A first start, or a start again after a leave.
    case start(Int)
    case partition([[Int]]), oneWay(from: Int, to: Int), heal
    case datagramLoss(Double)
    case clockJump(Int, Duration)
    case slowDisk(Int, until: Instant)
    /// The operator forgets slot `i`'s name on the master (or another running node).
    case forget(Int)
    /// Slot `i`'s host dies for good (a crash with no restart, not even at the final heal),
    /// once the cluster has had a master; otherwise a crash restarted at `orRestartAt`.
    case dieForGood(Int, orRestartAt: Instant)
    /// Every host but slot `i` loses power at once (not a failover to measure).
    case powerCut(except: Int)
    case stopDuplicate(Int, graceful: Bool)
    case splitJoin
    case finalHeal
    /// The operator's switches (see WorldPreferences.swift).
    case standby(Int, on: Bool)
    case health(Int, passing: Bool)
    case stepDown(Int, to: String?, timeout: Duration)
}

extension World {
    /// A schedule drawn from its seed: the cluster's size and configuration, each host's
    /// clock, when each node starts, and the faults.
    init(options: SimulationOptions, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let kinds = options.faultKinds
        let size = options.nodes ?? Int.random(in: 2...9, using: &rng)
        var c = CoreConfiguration(cluster: "sim")
        c.metric = Bool.random(using: &rng) ? .age : .port
        c.onQuorumLoss = rng.next() % 4 == 0 ? .dispatch : .wait
        c.tieBreaker = rng.next() % 3 == 0
        switch rng.next() % 6 {
        case 0, 1: c.expectedNodes = size
        case 2: c.expectedNodes = Int.random(in: 2...max(2, size), using: &rng)
        default: c.expectedNodes = nil
        }
        let names = (0..<size).map { "n\($0)" }
        let ports = (0..<size).map { UInt16(7000 + ($0 * 7) % 97) }
        self.init(options: options, seed: seed, rng: rng, configuration: c, names: names, ports: ports)
        shape = "\(size) nodes, metric \(c.metric.rawValue), on quorum loss \(c.onQuorumLoss.rawValue), tie-breaker \(c.tieBreaker ? "on" : "off"), expected nodes \(c.expectedNodes.map(String.init) ?? "off")"
        for i in slots.indices {
            let origin = Int64.random(in: 0...1_000_000_000_000, using: &self.rng)
            let skew = kinds.contains(.clockRate) ? Double(Int.random(in: -200...200, using: &self.rng)) / 10_000 : 0
            slots[i].clock = NodeClock(rate: 1 + skew, origin: origin)
            // Wall clocks disciplined by NTP on one LAN: a few milliseconds apart (drawn from
            // the origin, so that schedules of a seed stay what they were).
            slots[i].wallOffset = kinds.contains(.clockRate) ? origin % 11 - 5 : 0
        }
        if kinds.contains(.clockRate) { trace.count(.clockRate) }
        // Second processes' hosts read 0; every other offset is drawn from -5 to 5.
        let offsets = slots.map(\.wallOffset) + [0]
        checker.wallClockSpread = .milliseconds(offsets.max()! - offsets.min()!)
        let end = Instant.zero + options.duration
        faultWindowEnd = end - options.settle - .seconds(1)
        drawStarts()
        let count = Int.random(in: options.faultsPerSchedule, using: &self.rng)
        let drawable = kinds.subtracting([.clockRate, .newcomer, .slowHook, .priority, .witness, .standby, .checkFlap, .stepDown]).sorted()
        for _ in 0..<count where !drawable.isEmpty {
            let low = Duration.milliseconds(1500).nanosecondsClamped
            let at = Instant(nanoseconds: Int64.random(in: low...max(low + 1, faultWindowEnd.nanoseconds), using: &self.rng))
            drawFault(drawable[Int.random(in: 0..<drawable.count, using: &self.rng)], at: at)
        }
        queue.push(at: faultWindowEnd, .fault(.finalHeal))
        drawPreferences(seed: seed)
        if slots.contains(where: { $0.preferences != Eligibility() || $0.healthy != nil }) {
            shape += "; priorities " + primaries.map { i in
                slots[i].preferences.witness ? "W" : "\(slots[i].preferences.priority)"
            }.joined(separator: "/") + (slots.contains { $0.healthy != nil } ? ", checks" : "")
        }
    }

    /// Nodes start a few milliseconds to a second apart; with newcomers, some start later,
    /// perhaps into a partition.
    private mutating func drawStarts() {
        let n = slots.count
        var early = n
        if options.faultKinds.contains(.newcomer), n >= 3, rng.next() % 2 == 0 {
            early = Int.random(in: (n / 2 + 1)...(n - 1), using: &rng)
        }
        var t = Instant.zero
        for i in 0..<early {
            queue.push(at: t, .fault(.start(i)))
            t = t + .milliseconds(Int64.random(in: 0...600, using: &rng))
        }
        for i in early..<n {
            let at = Instant(nanoseconds: Int64.random(in: 1_000_000_000...max(1_000_000_001, faultWindowEnd.nanoseconds), using: &rng))
            queue.push(at: at, .fault(.start(i)))
            trace.count(.newcomer)
        }
    }

    private mutating func hold(_ range: ClosedRange<Int64>) -> Duration { .milliseconds(Int64.random(in: range, using: &rng)) }

    private mutating func drawFault(_ kind: FaultKind, at: Instant) {
        let n = primaryCount
        let victim = Int.random(in: 0..<n, using: &rng)
        func later(_ d: Duration) -> Instant { min(at + d, faultWindowEnd) }
        switch kind {
        case .crash, .wipe:
            queue.push(at: at, .fault(.crash(victim)))
            queue.push(at: later(hold(50...2500)), .fault(.restart(victim, wipe: kind == .wipe)))
        case .crashMaster:
            queue.push(at: at, .fault(.crash(-1)))
            queue.push(at: later(hold(50...2500)), .fault(.restart(-1, wipe: options.faultKinds.contains(.wipe) && rng.next() % 4 == 0)))
        case .pause:
            queue.push(at: at, .fault(.pause(victim)))
            queue.push(at: later(hold(50...2500)), .fault(.resume(victim)))
        case .suspend:
            queue.push(at: at, .fault(.suspend(victim)))
            queue.push(at: later(hold(300...5000)), .fault(.resume(victim)))
        case .clockJump:
            queue.push(at: at, .fault(.clockJump(victim, hold(50...3000))))
        case .leave:
            queue.push(at: at, .fault(.leave(victim)))
            queue.push(at: later(hold(50...2500)), .fault(.start(victim)))
        case .partition:
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
            queue.push(at: later(hold(50...2500)), .fault(.heal))
        case .splitJoin:
            queue.push(at: at, .fault(.splitJoin))
            queue.push(at: later(hold(1000...3000)), .fault(.heal))
        case .oneWay:
            var other = Int.random(in: 0..<n, using: &rng)
            if other == victim { other = (victim + 1) % n }
            queue.push(at: at, .fault(.oneWay(from: victim, to: other)))
            queue.push(at: later(hold(50...2500)), .fault(.heal))
        case .datagramLoss:
            queue.push(at: at, .fault(.datagramLoss(Double(Int.random(in: 20...100, using: &rng)) / 100)))
            queue.push(at: later(hold(50...2500)), .fault(.datagramLoss(0)))
        case .slowDisk:
            queue.push(at: at, .fault(.slowDisk(victim, until: later(hold(500...4000)))))
        case .duplicate:
            let d = slots.count
            var slot = Slot(name: slots[victim].name, port: UInt16(9000 + d), address: "10.0.1.\(d + 1)",
                            clock: NodeClock(rate: 1 + Double(Int.random(in: -200...200, using: &rng)) / 10_000, origin: Int64.random(in: 0...1_000_000_000_000, using: &rng)))
            slot.duplicateOf = victim
            slots.append(slot)
            queue.push(at: at, .fault(.start(d)))
            queue.push(at: later(hold(300...3000)), .fault(.stopDuplicate(d, graceful: rng.next() % 2 == 0)))
        case .forget where n >= 3 && rng.next() % 3 == 0:
            // A host dies for good and is forgotten; later every other host reboots at once,
            // as after a power cut. With `--expected-nodes` the rebooted nodes must still
            // elect without it (issue 11, hole 7: the names seen were kept in memory only).
            queue.push(at: at, .fault(.dieForGood(victim, orRestartAt: later(hold(2500...5000)))))
            queue.push(at: later(hold(800...1500)), .fault(.forget(victim)))
            let reboot = later(hold(1800...3000))
            queue.push(at: reboot, .fault(.powerCut(except: victim)))
            for j in 0..<n where j != victim {
                queue.push(at: min(reboot + hold(50...1000), faultWindowEnd), .fault(.restart(j, wipe: false)))
            }
        case .forget:
            queue.push(at: at, .fault(.crash(victim)))
            queue.push(at: later(hold(800...1500)), .fault(.forget(victim)))
            queue.push(at: later(hold(2500...5000)), .fault(.restart(victim, wipe: options.faultKinds.contains(.wipe) && rng.next() % 3 == 0)))
        case .clockRate, .newcomer, .slowHook, .priority, .witness, .standby, .checkFlap, .stepDown:
            break
        }
    }
}

