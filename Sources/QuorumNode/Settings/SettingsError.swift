/// A bad flag, value or configuration file line. `description` is one line saying what was
/// wrong, where (flag, or file and line), and what to do; quorumd prints it as
/// `quorumd: <description>` and exits with ``exitStatus``.
public struct SettingsError: Error, Equatable, CustomStringConvertible {
    /// The exit status for any configuration error (interface.md: "exit status 2").
    public static let exitStatus: Int32 = 2

    public var description: String

    public init(_ description: String) {
        // Always one line, whatever a lower layer produced.
        self.description = description
            .split(whereSeparator: \.isNewline)
            .map { $0.trimmingWhitespace() }
            .filter { !$0.isEmpty }
            .joined(separator: " ")
    }

    /// A bad value, from a flag or from a config file line.
    static func badValue(_ source: SettingSource, _ problem: String) -> SettingsError {
        SettingsError("\(source): \(problem)")
    }
}

/// Where a setting's value came from, as shown in error messages.
enum SettingSource: CustomStringConvertible {
    case flag(String)
    case file(path: String, line: Int, key: String)
    case positional(String)

    var description: String {
        switch self {
        case .flag(let flag): flag
        case .file(let path, let line, let key): "\(path):\(line): \(key)"
        case .positional(let name): name
        }
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
