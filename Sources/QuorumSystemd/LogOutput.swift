import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where quorumd's log lines go: journald when systemd connected our standard error to the
/// journal, standard error otherwise.
public enum LogOutput: Sendable, Equatable {
    case journal
    case standardError

    /// journald when `JOURNAL_STREAM` (`<device>:<inode>`, set by systemd for a service whose
    /// output goes to the journal) names the very file that fd 2 is. A child that merely
    /// inherited the variable, or a service whose stderr was redirected elsewhere, gets
    /// `.standardError`.
    public static func detect() -> LogOutput {
        detect(journalStream: getenv("JOURNAL_STREAM").map { String(cString: $0) }, fileDescriptor: 2)
    }

    /// ``detect()`` with the variable's value and the descriptor given (for tests).
    public static func detect(journalStream: String?, fileDescriptor: Int32) -> LogOutput {
        guard let journalStream, let (device, inode) = parseJournalStream(journalStream) else {
            return .standardError
        }
        var info = stat()
        guard fstat(fileDescriptor, &info) == 0 else { return .standardError }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode ? .journal : .standardError
    }

    /// `"<dev>:<ino>"` in decimal, as systemd writes it.
    public static func parseJournalStream(_ value: String) -> (device: UInt64, inode: UInt64)? {
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return nil }
        return (device, inode)
    }

    /// A handler for this output that follows `level` (its own level stays unset until a
    /// logger sets one).
    public func makeHandler(level: LogLevelSetting, metadataProvider: Logger.MetadataProvider? = nil) -> any LogHandler {
        switch self {
        case .journal:
            var handler = JournalLogHandler(logLevel: nil, metadataProvider: metadataProvider)
            handler.shared = level
            return handler
        case .standardError:
            var handler = StandardErrorLogHandler(logLevel: nil, metadataProvider: metadataProvider)
            handler.shared = level
            return handler
        }
    }
}

extension LoggingSystem {
    /// Sets up swift-log for quorumd: journald under systemd (see ``LogOutput/detect()``),
    /// else standard error, every handler at ``LogLevelSetting/process``, which starts at
    /// `level` and may change later. Call once, before the first `Logger` is made.
    public static func bootstrapQuorum(level: Logger.Level, output: LogOutput = .detect()) {
        LogLevelSetting.process.level = level
        bootstrap { _ in output.makeHandler(level: .process) }
    }
}

extension Logger.Metadata {
    /// An entry's metadata as every handler here sees it: the handler's own, then the
    /// provider's, then the entry's (later ones win on a key they share).
    static func merging(_ handler: Logger.Metadata, _ provider: Logger.MetadataProvider?, _ entry: Logger.Metadata?) -> Logger.Metadata {
        var merged = handler
        if let provided = provider?.get() { merged.merge(provided) { $1 } }
        if let entry { merged.merge(entry) { $1 } }
        return merged
    }
}
