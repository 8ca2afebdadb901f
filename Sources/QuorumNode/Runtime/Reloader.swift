import Logging
import QuorumControl
import QuorumSecurity
import QuorumSystemd
import ServiceLifecycle
import UnixSignals

/// Reloads the configuration: on SIGHUP (``ReloadSignals``) and on `quorumctl reload`.
///
/// The same flags and `--config` files as at start are read again, with the key file; if
/// anything is wrong, or a setting that needs a restart would change, nothing changes and the
/// reload says why. Otherwise the log level and hook timeout change at once, and the hooks,
/// the key and the seeds on the node's loop (``CoreAdapter/apply(_:keyring:)``). A reload never
/// changes the node's role by itself. systemd is told `RELOADING=1` before and `READY=1`
/// after, whatever the outcome.
///
/// Reloads run one at a time (an actor, and nothing awaited between reading and applying).
public actor Reloader {
    private let read: @Sendable () throws(SettingsError) -> NodeSettings
    private let driver: NodeDriver
    private let hooks: HookRunner?
    private let logger: Logger
    private let notifier: SystemdNotifier
    private var running: NodeSettings
    private var keyring: ClusterKeyring?

    /// - Parameter read: parses the start's flags and files again.
    public init(
        settings: NodeSettings, keyring: ClusterKeyring?, driver: NodeDriver, hooks: HookRunner?, logger: Logger,
        notifier: SystemdNotifier = SystemdNotifier(), read: @escaping @Sendable () throws(SettingsError) -> NodeSettings
    ) {
        running = settings
        self.keyring = keyring
        self.driver = driver
        self.hooks = hooks
        self.logger = logger
        self.notifier = notifier
        self.read = read
    }

    /// Reads and applies the configuration; `trigger` names what asked (for the log).
    public func reload(trigger: String) async -> ReloadReport {
        notifier.reloading()
        let (report, new, newKeyring) = prepare()
        if report.applied, let new {
            // Taken before anything is awaited: a reload that follows plans against these.
            running = new
            keyring = newKeyring
            LogLevelSetting.process.level = new.logLevel
            hooks?.timeout = new.hookTimeout
            await driver.apply(new, keyring: newKeyring, failure: nil)
            logger.notice("configuration reloaded (\(trigger)): \(report.line.dropFirst("reloaded: ".count))", metadata: [
                "MESSAGE_ID": "\(MessageID.reloaded.rawValue)", "quorum.changed-keys": "\(report.changed.keys.sorted().joined(separator: ","))",
            ])
            for warning in report.warnings { logger.warning("reload: \(warning)") }
        } else {
            await driver.apply(nil, keyring: nil, failure: report.errors.joined(separator: "; "))
            logger.error("\(report.line) (\(trigger)); the node runs on as it was", metadata: ["MESSAGE_ID": "\(MessageID.reloadRefused.rawValue)"])
        }
        driver.metrics.reloaded(applied: report.applied)
        driver.publish { notices in
            var event = notices.event(.reload)
            event.applied = report.applied
            event.outcome = report.line
            return event
        }
        return report
    }

    /// Everything checked, nothing applied.
    private func prepare() -> (ReloadReport, NodeSettings?, ClusterKeyring?) {
        let new: NodeSettings
        do {
            new = try read()
        } catch {
            return (ReloadReport(applied: false, errors: [error.description]), nil, nil)
        }
        var errors: [String] = []
        var newKeyring: ClusterKeyring? = nil
        var keysChanged = false
        if let path = new.keyFile {
            do {
                let loaded = try NamedFiles.loadKeyring(path)
                keysChanged = keyring.map { !loaded.holdsSameKeys(as: $0) } ?? true
                newKeyring = loaded
            } catch {
                errors.append(error.description)
            }
        }
        if let problem = NamedFiles.checkProblem(new) { errors.append(problem) }
        let plan = ReloadPlan.between(running, new, keysChanged: keysChanged)
        errors += plan.refusals
        guard errors.isEmpty else { return (ReloadReport(applied: false, errors: errors), nil, nil) }
        var changed: [String: [String]] = [:]
        for change in plan.changes { changed[change.key] = [change.old, change.new] }
        return (ReloadReport(applied: true, changed: changed, warnings: NamedFiles.hookWarnings(new)), new, newKeyring)
    }
}

/// SIGHUP, as a service of the group: each signal is one reload. A node never stops on it.
public struct ReloadSignals: Service {
    let reloader: Reloader

    public init(reloader: Reloader) { self.reloader = reloader }

    public func run() async {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            _ = await reloader.reload(trigger: "SIGHUP")
        }
    }
}
