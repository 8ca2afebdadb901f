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
