import ArgumentParser
import QuorumCore
import QuorumSimulator

@main
struct QuorumSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quorum-sim",
        abstract: "Run the real election core through seeded random fault schedules and check its guarantees.",
        discussion: """
            Each schedule starts a simulated cluster, injects crashes, restarts, pauses, graceful \
            leaves and rejoins, symmetric and one-way partitions and datagram loss, then heals \
            everything. At every step it checks that no epoch has two masters and that no two \
            nodes hold the master role at once; when a master hook starts, that no other master \
            interval is open and no planned step-down hook still runs; after healing, that all \
            nodes agree on one master. The last line is `N schedules, V violations`.
            """)

    @Option(help: "How many schedules to run.") var schedules: Int = 100
    @Option(help: "Nodes per cluster (2 to 9).") var nodes: Int = 5
    @Option(help: "Seed of the first schedule; schedule i uses seed+i.") var seed: UInt64 = 1
    @Option(help: "Simulated seconds per schedule.") var seconds: Int = 12
    @Flag(help: "Print every step of each schedule (use with --schedules 1 to replay a seed).") var trace = false
    @Option(help: "Plant a known bug to show the checks catch it: \(PlantedBug.allCases.map(\.rawValue).joined(separator: ", ")).")
    var plant: String?

    func validate() throws {
        guard (1...1_000_000).contains(schedules) else { throw ValidationError("--schedules must be 1 to 1000000") }
        guard (2...9).contains(nodes) else { throw ValidationError("--nodes must be 2 to 9") }
        guard (8...600).contains(seconds) else { throw ValidationError("--seconds must be 8 to 600") }
        if let plant, PlantedBug(rawValue: plant) == nil { throw ValidationError("unknown --plant \(plant)") }
    }

    func run() throws {
        var options = SimulationOptions()
        options.nodes = nodes
        options.duration = .seconds(seconds)
        options.trace = trace
        options.plantedBug = plant.flatMap(PlantedBug.init(rawValue:))
        let summary = runSchedules(count: schedules, firstSeed: seed, options: options)
        for r in summary.failedSchedules.prefix(5) {
            print("VIOLATION in schedule with seed \(r.seed):")
            for v in r.violations { print("  \(v)") }
            print("  faults:")
            for f in r.faults { print("    \(f)") }
            print("  replay: swift run -c release quorum-sim --schedules 1 --nodes \(nodes) --seconds \(seconds) --seed \(r.seed) --trace\(plant.map { " --plant \($0)" } ?? "")")
            if trace { for line in r.trace { print("    \(line)") } }
        }
        if trace, summary.failedSchedules.isEmpty, let r = runSchedules(count: 1, firstSeed: seed, options: options).failedSchedules.first ?? nil {
            _ = r
        }
        if trace && summary.failedSchedules.isEmpty {
            let r = ClusterSimulator(options: options).run(seed: seed)
            for f in r.faults { print("fault \(f)") }
            for line in r.trace { print(line) }
        }
        print("events simulated: \(summary.events)")
        if let c = SimulationSummary.percentiles(summary.crashFailovers) {
            print("crash of the master → next master hook (simulated network): median \(fmt(c.median)) ms, p99 \(fmt(c.p99)) ms, max \(fmt(c.max)) ms over \(summary.crashFailovers.count)")
        }
        if let l = SimulationSummary.percentiles(summary.leaveHandovers) {
            print("leave of the master → next master hook (simulated network): median \(fmt(l.median)) ms, p99 \(fmt(l.p99)) ms, max \(fmt(l.max)) ms over \(summary.leaveHandovers.count)")
        }
        if let s = SimulationSummary.percentiles(summary.settleTimes) {
            print("final heal → every node agrees on one master: median \(fmt(s.median)) ms, p99 \(fmt(s.p99)) ms, max \(fmt(s.max)) ms over \(summary.settleTimes.count)")
        }
        print("\(summary.schedules) schedules, \(summary.violations.count) violations")
        if !summary.violations.isEmpty { throw ExitCode(1) }
    }

    func fmt(_ x: Double) -> String { String(Int((x * 10).rounded())).count > 0 ? String(format2(x)) : "" }
    func format2(_ x: Double) -> String {
        let v = (x * 10).rounded() / 10
        return "\(v)"
    }
}
