/// What a reload would change, decided before anything is applied: the settings read anew
/// (the same flags and `--config` files as at start) against the running ones.
///
/// Reloadable: the hooks and their timeout (from the next hook run on), the log level
/// (`log-level`, `debug`), the key file's keys (a rotation: a node with a key keeps one), the
/// seeds and their resolve interval, the priority and preemption (told to every peer at
/// once; a master whose priority drops below another's hands over in order), and the
/// health check. Every other setting decides who the node is, where it
/// listens or how its cluster counts votes: changing it needs a restart, and a reload that
/// would change one changes nothing at all.
public struct ReloadPlan: Sendable, Equatable {
    public struct Change: Sendable, Equatable, CustomStringConvertible {
        public var key: String
        public var old: String
        public var new: String
        public var description: String { "\(key) \(Self.shown(old)) -> \(Self.shown(new))" }
        static func shown(_ text: String) -> String { text.isEmpty ? "(none)" : text }
    }

    /// What changes, in the settings' order.
    public var changes: [Change] = []
    /// Why the reload is refused, one line each (empty: it may be applied).
    public var refusals: [String] = []

    public var isRefused: Bool { !refusals.isEmpty }

    /// Keys a running node can take a new value of.
    public static let reloadable: Set<String> = [
        "master-hook", "slave-hook", "hook-timeout", "log-level", "debug", "key-file", "peer", "peer-resolve-interval",
        "priority", "preempt", "preempt-delay", "check", "check-interval", "check-timeout", "check-fall", "check-rise",
    ]

    /// - Parameter keysChanged: the key file names the same path but holds other keys (a
    ///   rotation step).
    public static func between(_ running: NodeSettings, _ read: NodeSettings, keysChanged: Bool = false) -> ReloadPlan {
        var plan = ReloadPlan()
        let old = Dictionary(uniqueKeysWithValues: running.settingTexts)
        for (key, value) in read.settingTexts {
            let before = old[key] ?? ""
            guard before != value else { continue }
            if reloadable.contains(key) {
                plan.changes.append(Change(key: key, old: before, new: value))
            } else {
                plan.refusals.append("\(key) \(Change.shown(before)) -> \(Change.shown(value)) needs a restart")
            }
        }
        if (running.keyFile == nil) != (read.keyFile == nil) {
            plan.refusals.append("key-file: turning the cluster key \(read.keyFile == nil ? "off" : "on") needs a restart of every node (its peers must change with it)")
        } else if keysChanged, running.keyFile == read.keyFile {
            plan.changes.append(Change(key: "key-file", old: "keys of \(running.keyFile ?? "")", new: "new keys"))
        }
        return plan
    }

    /// `log-level debug -> info, hook-timeout 30 -> 10`, or `no changes`.
    public var summary: String {
        changes.isEmpty ? "no changes" : changes.map(\.description).joined(separator: ", ")
    }
}
