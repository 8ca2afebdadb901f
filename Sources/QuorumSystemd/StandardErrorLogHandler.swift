import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A swift-log handler writing one line per entry to standard error:
/// `<level> <message>`, followed by ` key=value` for each metadata key (sorted) when the
/// handler's level is `debug` or `trace`, or when `showMetadata` is set.
///
/// Line breaks in the message or values are written as `\n`, so an entry is always one line.
/// Each line goes out in a single `write(2)`, so concurrent loggers do not interleave mid-line.
public struct StandardErrorLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    /// This handler's own level when set on its logger, else the shared setting's.
    public var logLevel: Logger.Level {
        get { ownLevel ?? shared?.level ?? .info }
        set { ownLevel = newValue }
    }
    private var ownLevel: Logger.Level?
    /// The process's level (see ``LogLevelSetting``), followed while no level of its own is set.
    public var shared: LogLevelSetting?
    public var metadataProvider: Logger.MetadataProvider?
    /// Show metadata even above debug level.
    public var showMetadata: Bool
    private let fileDescriptor: Int32

    public init(
        logLevel: Logger.Level? = .info,
        showMetadata: Bool = false,
        metadataProvider: Logger.MetadataProvider? = nil,
        fileDescriptor: Int32 = 2
    ) {
        self.ownLevel = logLevel
        self.showMetadata = showMetadata
        self.metadataProvider = metadataProvider
        self.fileDescriptor = fileDescriptor
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = Logger.Metadata.merging(metadata, metadataProvider, event.metadata)
        let withMetadata = showMetadata || logLevel <= .debug
        // A wall-clock time with milliseconds first (journald stamps its own entries).
        var line = Self.timestamp() + " " + Self.format(level: event.level, message: "\(event.message)", metadata: withMetadata ? merged : [:])
        line.append("\n")
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { raw in
                write(fileDescriptor, raw.baseAddress! + offset, raw.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
        bytes.removeAll()
    }

    /// `HH:MM:SS.mmm` in UTC.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let day = Int(ts.tv_sec) % 86_400
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let ms = Int(ts.tv_nsec) / 1_000_000
        let millis = ms < 10 ? "00\(ms)" : (ms < 100 ? "0\(ms)" : "\(ms)")
        return "\(two(day / 3600)):\(two(day / 60 % 60)):\(two(day % 60)).\(millis)"
    }

    /// The line for one entry, without the trailing newline. Pure, for tests.
    public static func format(level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line = "\(level) " + escape(message)
        for key in metadata.keys.sorted() {
            line += " \(key)=" + escape(JournalLogHandler.text(metadata[key]!))
        }
        return line
    }

    static func escape(_ text: String) -> String {
        guard text.contains(where: \.isNewline) else { return text }
        return text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).joined(separator: "\\n")
    }
}
