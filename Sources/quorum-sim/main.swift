import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuorumCore
import QuorumSimulator

@main
struct QuorumSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quorum-sim",
        abstract: "Run the real election core through seeded hostile fault schedules and check its guarantees.",
        discussion: """
            Each schedule draws a cluster (2 to 9 nodes, metric, tie-breaker, expected nodes, \
            quorum-loss policy) and a hostile world: per-host clock rates, clock jumps and host \
            suspends; crashes, restarts with wiped state, pauses, graceful leaves, forgets; \
            partitions, one-way cuts, datagram loss; slow fsync and slow hooks; a second process \
            with a member's name; newcomers arriving late. The checker judges from global time: \
            one master per epoch, no two master tenures at once, epochs that never decrease, one \
            vote per voter and epoch, real quorums, master hooks only within a lease, and \
            agreement within the bound after every heal. The last line is \
            `N schedules, V violations in T s`.
            """)

    @Option(help: "How many schedules to run.") var schedules: Int = 100
    @Option(help: "A fixed cluster size (2 to 9); by default each schedule draws one.") var nodes: Int?
    @Option(help: "Seed of the first schedule; schedule i uses seed+i.") var seed: UInt64 = 1
    @Option(help: "Simulated seconds per schedule.") var seconds: Int = 12
    @Option(help: "Print the full event trace of the schedule with this seed (with faults), and nothing else.") var replay: UInt64?
    @Flag(help: "Print every step of the failing schedules.") var trace = false
    @Option(help: "Plant a known bug or hole to show the checks catch it: \(Plant.allNames.joined(separator: ", ")).")
    var plant: String?
    @Option(help: "Schedules run on this many threads (default: one per online core).") var jobs: Int?
    @Option(help: "Only these fault kinds, comma-separated: \(FaultKind.allCases.map(\.rawValue).joined(separator: ",")).")
    var kinds: String?

    func validate() throws {
        guard (1...10_000_000).contains(schedules) else { throw ValidationError("--schedules must be 1 to 10000000") }
        if let nodes, !(2...9).contains(nodes) { throw ValidationError("--nodes must be 2 to 9") }
        guard (8...600).contains(seconds) else { throw ValidationError("--seconds must be 8 to 600") }
        if let plant, Plant(plant) == nil { throw ValidationError("unknown --plant \(plant); known: \(Plant.allNames.joined(separator: ", "))") }
        _ = try faultKinds()
        if let jobs, !(1...256).contains(jobs) { throw ValidationError("--jobs must be 1 to 256") }
    }

    func faultKinds() throws -> Set<FaultKind> {
        guard let kinds else { return Set(FaultKind.allCases) }
        var set: Set<FaultKind> = []
        for k in kinds.split(separator: ",") {
            guard let kind = FaultKind(rawValue: String(k)) else { throw ValidationError("unknown fault kind \(k)") }
            set.insert(kind)
        }
        return set
    }

    var replayCommand: String {
        var s = "quorum-sim --seconds \(seconds)"
        if let nodes { s += " --nodes \(nodes)" }
        if let plant { s += " --plant \(plant)" }
        if let kinds { s += " --kinds \(kinds)" }
        return s + " --replay"
    }

    func run() async throws {
        var options = SimulationOptions()
        options.nodes = nodes
        options.duration = .seconds(seconds)
        options.faultKinds = try faultKinds()
        if let plant { Plant(plant)?.apply(to: &options) }

        if let replay {
            options.trace = true
            let r = ClusterSimulator(options: options).run(seed: replay)
            print("schedule with seed \(replay): \(r.shape)")
            for line in r.trace { print(line) }
            for v in r.violations { print("VIOLATION \(v)") }
            print("1 schedules, \(r.violations.count) violations")
            if !r.violations.isEmpty { throw ExitCode(1) }
            return
        }

        options.trace = trace
        let clock = ContinuousClock()
        let started = clock.now
        let summary = await runSchedulesInParallel(count: schedules, firstSeed: seed, options: options, jobs: jobs ?? max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
        let elapsed = clock.now - started

        for r in summary.failedSchedules.prefix(5) {
            print("VIOLATION in schedule with seed \(r.seed) (\(r.shape)):")
            for v in r.violations { print("  \(v)") }
            print("  faults:")
            for f in r.faults { print("    \(f)") }
            print("  replay: \(replayCommand) \(r.seed)")
            if trace { for line in r.trace { print("    \(line)") } }
        }
        if summary.failedSchedules.count > 5 {
            print("… and \(summary.failedSchedules.count - 5) more failing schedules:")
            for r in summary.failedSchedules.dropFirst(5) {
                print("  seed \(r.seed): \(r.violations.first.map { "\($0.rule): \($0.detail)" } ?? "")  (replay: \(replayCommand) \(r.seed))")
            }
        }
        var byRule: [String: (count: Int, first: UInt64)] = [:]
        for r in summary.failedSchedules {
            for rule in Set(r.violations.map(\.rule)) {
                if let e = byRule[rule] { byRule[rule] = (e.count + 1, e.first) } else { byRule[rule] = (1, r.seed) }
            }
        }
        if !byRule.isEmpty {
            print("failing schedules by rule:")
            for (rule, v) in byRule.sorted(by: { $0.key < $1.key }) { print("  \(rule): \(v.count) (first seed \(v.first))") }
        }
        print("faults applied, by kind: " + FaultKind.allCases.map { "\($0.rawValue) \(summary.faultCounts[$0] ?? 0)" }.joined(separator: ", "))
        print("events simulated: \(summary.events); agreement checks after a heal: \(summary.agreementChecks)")
        if let c = SimulationSummary.percentiles(summary.crashFailovers) {
            print("crash of the master → next master hook (simulated network): median \(fmt(c.median)) ms, p99 \(fmt(c.p99)) ms, max \(fmt(c.max)) ms over \(summary.crashFailovers.count)")
        }
        if let l = SimulationSummary.percentiles(summary.leaveHandovers) {
            print("leave of the master → next master hook (simulated network): median \(fmt(l.median)) ms, p99 \(fmt(l.p99)) ms, max \(fmt(l.max)) ms over \(summary.leaveHandovers.count)")
        }
        if let s = SimulationSummary.percentiles(summary.settleTimes) {
            print("final heal → every node agrees on one master: median \(fmt(s.median)) ms, p99 \(fmt(s.p99)) ms, max \(fmt(s.max)) ms over \(summary.settleTimes.count)")
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("\(summary.schedules) schedules, \(summary.violations.count) violations in \(fmt(seconds)) s")
        if !summary.violations.isEmpty { throw ExitCode(1) }
    }

    func fmt(_ x: Double) -> String { "\((x * 10).rounded() / 10)" }
}
