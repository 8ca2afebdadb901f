import Logging
import Synchronization

/// The process's log level, shared by every handler `bootstrapQuorum` makes: swift-log copies
/// a handler into each `Logger`, so a level kept in the handler could not change after start.
/// A reload (SIGHUP, `quorumctl reload`) sets it here and every logger follows at once.
///
/// A handler whose level was set on its own `Logger` (`logger.logLevel = …`) keeps that
/// level instead.
public final class LogLevelSetting: Sendable {
    private let raw: Atomic<UInt8>

    public init(_ level: Logger.Level) {
        raw = Atomic(Self.index(level))
    }

    public var level: Logger.Level {
        get { Logger.Level.allCases[Int(raw.load(ordering: .relaxed))] }
        set { raw.store(Self.index(newValue), ordering: .relaxed) }
    }

    /// The one setting of this process (made by `bootstrapQuorum`).
    public static let process = LogLevelSetting(.info)

    private static func index(_ level: Logger.Level) -> UInt8 {
        UInt8(Logger.Level.allCases.firstIndex(of: level)!)
    }
}
