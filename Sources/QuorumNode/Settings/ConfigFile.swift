/// The `--config` file format: `key = value` lines, `#` comment lines, blank lines.
///
/// Keys are quorumd's long option names without the dashes (`master-hook`,
/// `on-quorum-loss`, `tie-breaker`, …) plus `address`, `port`, `broadcast-address` and
/// `broadcast-port` for the positionals. A value may be wrapped in double quotes (for
/// leading or trailing spaces); a `#` after a value is part of the value. Within one file a
/// later line for the same key wins, except for a repeatable key (`peer`), whose lines add up.
enum ConfigFile {
    static func parse(_ text: String, path: String) throws(SettingsError) -> [SettingKey: [SettingValue]] {
        var values: [SettingKey: [SettingValue]] = [:]
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw SettingsError("\(path):\(lineNumber): expected `key = value`, found '\(line)'")
            }
            let key = line[..<equals].trimmingWhitespace()
            var value = line[line.index(after: equals)...].trimmingWhitespace()
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            guard let settingKey = SettingKey(fileKey: key) else {
                let hint = key == "config" ? "config files cannot include other files" : "known keys: \(SettingKey.allCases.map(\.rawValue).joined(separator: ", "))"
                throw SettingsError("\(path):\(lineNumber): unknown key '\(key)' (\(hint))")
            }
            let entry = SettingValue(text: value, source: .file(path: path, line: lineNumber, key: key))
            values[settingKey] = settingKey.isRepeatable ? (values[settingKey] ?? []) + [entry] : [entry]
        }
        return values
    }
}
