import QuorumControl
import QuorumCore

/// The verdict of a node's health check from its results: unknown until the first result;
/// the first pass makes it passing at once (a new cluster elects promptly), `fall` failures
/// in a row make it failing, and from failing `rise` passes in a row make it passing again.
struct HealthState: Equatable {
    enum Transition: Equatable {
        case passing(first: Bool)
        case failing(failures: Int)
    }

    private(set) var verdict: Eligibility.Health
    /// - Parameter added: a check added to a running node by a reload: until its first
    ///   result, health does not count (a reload never moves the role by itself).
    init(added: Bool = false) { verdict = added ? .unchecked : .unknown }
    /// Results in a row like the last one.
    private(set) var consecutive = 0
    private(set) var lastPassed: Bool?
    /// When the verdict last changed, when the last run started (ms since 1970), how it ended.
    private(set) var since: Int64?
    private(set) var lastRun: Int64?
    private(set) var lastDuration: Duration?
    private(set) var lastResult: String?
    private(set) var lastOutput: String?

    /// Records one run's result; returns the change of verdict it caused, if any.
    mutating func record(passed: Bool, result: String, output: String?, startedAt: Int64, took: Duration, fall: Int, rise: Int) -> Transition? {
        consecutive = lastPassed == passed ? consecutive + 1 : 1
        lastPassed = passed
        lastRun = startedAt
        lastDuration = took
        lastResult = result
        lastOutput = output
        let next: Eligibility.Health
        switch (verdict, passed) {
        case (.unknown, true), (.unchecked, true): next = .passing
        case (.failing, true): next = consecutive >= rise ? .passing : .failing
        case (.passing, false), (.unknown, false), (.unchecked, false): next = consecutive >= fall ? .failing : verdict
        default: next = verdict
        }
        guard next != verdict else { return nil }
        let first = verdict == .unknown || verdict == .unchecked
        verdict = next
        since = startedAt
        return next == .passing ? .passing(first: first) : .failing(failures: consecutive)
    }

    func report(_ check: HealthCheckSettings) -> CheckReport {
        CheckReport(
            state: verdict == .failing ? "failing" : (verdict == .passing ? "passing" : "unknown"), consecutive: consecutive,
            lastRun: lastRun.map { ISO8601.utc(millisecondsSinceEpoch: $0) },
            lastDurationSeconds: lastDuration.map { Double($0.nanosecondsClamped) / 1e9 },
            lastResult: lastResult, lastOutput: lastOutput, since: since.map { ISO8601.utc(millisecondsSinceEpoch: $0) },
            fall: check.fall, rise: check.rise)
    }
}
