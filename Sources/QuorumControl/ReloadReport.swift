/// The answer to `reload`: what changed, or why nothing did.
///
/// JSON: `{"applied":true,"changed":{"log-level":["debug","info"]},"errors":[],"warnings":[]}`.
public struct ReloadReport: Codable, Equatable, Sendable {
    /// Whether the new settings are in force (all-or-nothing: `false` changed nothing).
    public var applied: Bool
    /// Each changed setting: its old and new value, as a config file writes them.
    public var changed: [String: [String]]
    /// Why the reload was refused, one line each (bad file, a setting that needs a restart).
    public var errors: [String]
    /// Worth knowing, but applied anyway (a hook file that is not there yet).
    public var warnings: [String]

    public init(applied: Bool, changed: [String: [String]] = [:], errors: [String] = [], warnings: [String] = []) {
        self.applied = applied
        self.changed = changed
        self.errors = errors
        self.warnings = warnings
    }

    /// `reloaded: log-level debug -> info` / `reloaded: no changes` / `reload refused: …`.
    public var line: String {
        if !applied { return "reload refused: " + errors.joined(separator: "; ") }
        if changed.isEmpty { return "reloaded: no changes" }
        let parts = changed.keys.sorted().map { key in
            let values = changed[key] ?? []
            func shown(_ s: String) -> String { s.isEmpty ? "(none)" : s }
            return "\(key) \(shown(values.first ?? "")) -> \(shown(values.last ?? ""))"
        }
        return "reloaded: " + parts.joined(separator: ", ")
    }
}
