/// The answer to `step-down`: done, refused (nothing changed) or not confirmed in time.
///
/// JSON: `{"ok":true,"outcome":"done","from":"A","to":"C","previousEpoch":8,"epoch":9,"durationSeconds":0.014}`;
/// refused: `{"ok":false,"outcome":"refused","error":"…","reason":"target-ineligible"}`.
public struct StepDownReport: Codable, Equatable, Sendable {
    public enum Outcome: String, Codable, Sendable {
        case done
        case refused
        case notConfirmed = "not-confirmed"
    }

    public var ok: Bool
    public var outcome: Outcome
    /// The master that stepped down, and the master after it.
    public var from: String?
    public var to: String?
    public var previousEpoch: UInt64?
    public var epoch: UInt64?
    /// From the request to the new master, as the node asked saw it.
    public var durationSeconds: Double?
    /// Why it was refused or not confirmed, one line.
    public var error: String?
    /// The refusal's kind: `no-master`, `busy`, `unknown-member`, `already-master`,
    /// `target-ineligible`, `no-other-eligible`, `feature-inactive`.
    public var reason: String?
    /// Worth knowing: the role will move again (a higher priority preempts after its delay).
    public var warning: String?

    public init(outcome: Outcome, from: String? = nil, to: String? = nil, previousEpoch: UInt64? = nil, epoch: UInt64? = nil,
                durationSeconds: Double? = nil, error: String? = nil, reason: String? = nil, warning: String? = nil) {
        self.ok = outcome == .done
        self.outcome = outcome
        self.from = from
        self.to = to
        self.previousEpoch = previousEpoch
        self.epoch = epoch
        self.durationSeconds = durationSeconds
        self.error = error
        self.reason = reason
        self.warning = warning
    }

    /// `stepped down: A -> C (epoch 8 -> 9) in 14 ms`, or the error.
    public var line: String {
        guard outcome == .done else { return error ?? outcome.rawValue }
        let ms = Int(((durationSeconds ?? 0) * 1000).rounded())
        return "stepped down: \(from ?? "?") -> \(to ?? "?") (epoch \(previousEpoch ?? 0) -> \(epoch ?? 0)) in \(ms) ms"
    }

    /// quorumctl's exit status: 0 done, 1 refused (nothing changed), 3 not confirmed in time.
    public var exitStatus: Int32 {
        switch outcome {
        case .done: 0
        case .refused: 1
        case .notConfirmed: 3
        }
    }
}

/// A node's standby (`quorumctl standby on|off`), as `status` shows it.
/// JSON: `"standby": {"on":true,"since":"2026-12-03T09:00:00Z","persistent":true}`.
public struct StandbyReport: Codable, Equatable, Sendable {
    public var on: Bool
    /// When it was turned on (ISO 8601, UTC); null when off.
    public var since: String?
    /// Whether it outlives a restart (`--until-restart` turns this off).
    public var persistent: Bool

    public init(on: Bool, since: String? = nil, persistent: Bool = false) {
        self.on = on
        self.since = since
        self.persistent = persistent
    }
}

/// The health check (`--check`), as `status` shows it.
/// JSON: `"check": {"configured":true,"state":"failing","consecutive":3,"lastRun":"…Z",
/// "lastDurationSeconds":0.012,"lastResult":"exit 1","lastOutput":"haproxy not running","since":"…Z"}`.
public struct CheckReport: Codable, Equatable, Sendable {
    public var configured: Bool
    /// `unknown` (no verdict yet), `passing` or `failing`.
    public var state: String
    /// Consecutive results like the last one.
    public var consecutive: Int
    public var lastRun: String?
    public var lastDurationSeconds: Double?
    /// `exit 0`, `exit 1`, `timeout`, `signal 11`, `exec: No such file or directory`.
    public var lastResult: String?
    /// The first line of its output (at most 200 bytes).
    public var lastOutput: String?
    /// Since when the state holds.
    public var since: String?
    /// `--check-fall` and `--check-rise`.
    public var fall: Int
    public var rise: Int

    public init(configured: Bool = true, state: String, consecutive: Int, lastRun: String? = nil, lastDurationSeconds: Double? = nil,
                lastResult: String? = nil, lastOutput: String? = nil, since: String? = nil, fall: Int, rise: Int) {
        self.configured = configured
        self.state = state
        self.consecutive = consecutive
        self.lastRun = lastRun
        self.lastDurationSeconds = lastDurationSeconds
        self.lastResult = lastResult
        self.lastOutput = lastOutput
        self.since = since
        self.fall = fall
        self.rise = rise
    }

    /// `failing since 2026-11-27T16:41:02Z (3/3 failures, exit 1: "haproxy not running")`.
    public var text: String {
        var out = state
        if let since { out += " since \(since)" }
        var detail: [String] = []
        if state == "failing" { detail.append("\(consecutive)/\(fall) failures") }
        if state == "passing", consecutive < rise, consecutive > 0 { detail.append("\(consecutive) passes") }
        if let lastResult { detail.append(lastResult + (lastOutput.map { ": \"\($0)\"" } ?? "")) }
        if !detail.isEmpty { out += " (" + detail.joined(separator: ", ") + ")" }
        return out
    }
}
