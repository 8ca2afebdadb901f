import CSystemd
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A swift-log handler writing to journald's native protocol (`sd_journal_sendv`), so each
/// metadata key becomes a field that `journalctl -o verbose` shows and `journalctl
/// QUORUM_MASTER=B` can match.
///
/// Fields written: `MESSAGE`, `PRIORITY` (syslog level from the swift-log level),
/// `SYSLOG_IDENTIFIER` (`quorumd` unless told otherwise), `CODE_FILE`/`CODE_LINE`/`CODE_FUNC`,
/// and one field per metadata key, named by ``JournalFieldName/make(_:)``. A metadata key
/// spelled `MESSAGE_ID` is passed through as the journal's `MESSAGE_ID` (give a change of
/// master a stable 128-bit id in hex, as `journalctl --new-id128` prints).
///
/// Non-guarantee: when journald is not reachable the entry is lost; nothing falls back.
public struct JournalLogHandler: LogHandler {
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
    public let identifier: String

    public init(
        identifier: String = "quorumd",
        logLevel: Logger.Level? = .info,
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        self.identifier = identifier
        self.ownLevel = logLevel
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = Logger.Metadata.merging(metadata, metadataProvider, event.metadata)
        let fields = Self.fields(
            level: event.level, message: "\(event.message)", metadata: merged,
            identifier: identifier, file: event.file, function: event.function, line: event.line)
        Self.send(fields)
    }

    /// syslog priority for a swift-log level (journald's `PRIORITY`).
    public static func priority(for level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// The `NAME=value` fields of one entry, in the order they are sent. Pure, for tests.
    public static func fields(
        level: Logger.Level,
        message: String,
        metadata: Logger.Metadata,
        identifier: String = "quorumd",
        file: String? = nil,
        function: String? = nil,
        line: UInt? = nil
    ) -> [String] {
        var fields = [
            "MESSAGE=" + message,
            "PRIORITY=\(priority(for: level))",
            "SYSLOG_IDENTIFIER=" + identifier,
        ]
        if let file { fields.append("CODE_FILE=" + file) }
        if let line { fields.append("CODE_LINE=\(line)") }
        if let function { fields.append("CODE_FUNC=" + function) }
        for key in metadata.keys.sorted() {
            let name = key == "MESSAGE_ID" ? "MESSAGE_ID" : JournalFieldName.make(key)
            fields.append(name + "=" + Self.text(metadata[key]!))
        }
        return fields
    }

    static func text(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        default: value.description
        }
    }

    /// Hands the fields to `sd_journal_sendv`. The native protocol carries values with line
    /// breaks or any bytes, so nothing is escaped here.
    static func send(_ fields: [String]) {
        let buffers = fields.map { field -> UnsafeMutableRawBufferPointer in
            let bytes = Array(field.utf8)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
            bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        var vectors = zip(buffers, fields).map { buffer, field in
            iovec(iov_base: buffer.baseAddress, iov_len: field.utf8.count)
        }
        _ = vectors.withUnsafeMutableBufferPointer { pointer in
            sd_journal_sendv(pointer.baseAddress, Int32(pointer.count))
        }
    }
}
