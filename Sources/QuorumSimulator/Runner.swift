import QuorumCore

/// Runs many schedules and summarises them.
public struct SimulationSummary: Sendable {
    public var schedules = 0
    public var violations: [Violation] = []
    public var failedSchedules: [ScheduleResult] = []
    public var events = 0
    public var crashFailovers: [Duration] = []
    public var leaveHandovers: [Duration] = []
    /// Per schedule: from the final heal (every node back, network whole) to agreement.
    public var settleTimes: [Duration] = []
    /// Faults applied, by kind, over all schedules.
    public var faultCounts: [FaultKind: Int] = [:]
    /// How many times the agreement bound was checked after the world became whole.
    public var agreementChecks = 0

    public init() {}

    public mutating func add(_ r: ScheduleResult) {
        schedules += 1
        events += r.events
        crashFailovers += r.crashFailovers
        leaveHandovers += r.leaveHandovers
        agreementChecks += r.agreementChecks
        for (k, n) in r.faultCounts { faultCounts[k, default: 0] += n }
        if let t = r.settleTime { settleTimes.append(t) }
        if !r.violations.isEmpty {
            violations += r.violations
            failedSchedules.append(r)
        }
    }

    /// Adds the schedules of another summary (run after this one's).
    public mutating func merge(_ o: SimulationSummary) {
        schedules += o.schedules
        violations += o.violations
        failedSchedules += o.failedSchedules
        events += o.events
        crashFailovers += o.crashFailovers
        leaveHandovers += o.leaveHandovers
        settleTimes += o.settleTimes
        agreementChecks += o.agreementChecks
        for (k, n) in o.faultCounts { faultCounts[k, default: 0] += n }
    }

    /// The median and 99th percentile of a list of durations, in milliseconds.
    public static func percentiles(_ values: [Duration]) -> (median: Double, p99: Double, max: Double)? {
        guard !values.isEmpty else { return nil }
        let sorted = values.map(\.milliseconds).sorted()
        func at(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * q).rounded()))] }
        return (at(0.5), at(0.99), sorted.last!)
    }
}

public func runSchedules(count: Int, firstSeed: UInt64, options: SimulationOptions, progress: ((Int) -> Void)? = nil) -> SimulationSummary {
    var summary = SimulationSummary()
    let simulator = ClusterSimulator(options: options)
    for i in 0..<count {
        summary.add(simulator.run(seed: firstSeed &+ UInt64(i)))
        progress?(i + 1)
    }
    return summary
}

/// Runs the schedules on `jobs` threads of the cooperative pool, in contiguous blocks of
/// seeds, and merges the results in seed order (the same summary as one job gives).
public func runSchedulesInParallel(count: Int, firstSeed: UInt64, options: SimulationOptions, jobs: Int) async -> SimulationSummary {
    let jobs = max(1, min(jobs, count))
    let block = (count + jobs - 1) / jobs
    return await withTaskGroup(of: (Int, SimulationSummary).self) { group in
        for j in 0..<jobs {
            let start = j * block
            let n = min(block, count - start)
            guard n > 0 else { continue }
            group.addTask { (j, runSchedules(count: n, firstSeed: firstSeed &+ UInt64(start), options: options)) }
        }
        var parts: [(Int, SimulationSummary)] = []
        for await part in group { parts.append(part) }
        var summary = SimulationSummary()
        for (_, part) in parts.sorted(by: { $0.0 < $1.0 }) { summary.merge(part) }
        return summary
    }
}
