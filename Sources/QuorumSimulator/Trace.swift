import QuorumCore

/// What a schedule did, kept in the world's value: the faults (always), how many of each
/// kind, and with tracing on every step, for replaying one seed.
struct Trace: Sendable {
    var enabled = false
    private(set) var lines: [String] = []
    private(set) var faults: [String] = []
    private(set) var counts: [FaultKind: Int] = [:]

    mutating func add(_ time: Instant, _ line: String) {
        lines.append("\(time) \(line)")
    }

    /// A fault: always in the fault log, and in the trace when it is on.
    mutating func fault(_ time: Instant, _ kind: FaultKind?, _ line: String) {
        faults.append("\(time) \(line)")
        if enabled { lines.append("\(time) FAULT \(line)") }
        if let kind { count(kind) }
    }

    mutating func count(_ kind: FaultKind) { counts[kind, default: 0] += 1 }
}
