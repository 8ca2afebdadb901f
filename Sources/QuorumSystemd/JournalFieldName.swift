/// Turns swift-log metadata keys into journald field names.
///
/// journald accepts field names of `A-Z`, `0-9` and `_` only, not starting with `_` (reserved
/// for trusted fields) or a digit, at most 64 characters; it silently drops any other field.
public enum JournalFieldName {
    /// The prefix given to keys that would otherwise be invalid or clash with a field the
    /// journal handler writes itself.
    public static let prefix = "QUORUM_"

    /// Fields the journal handler sets itself; a metadata key mapping to one of them is
    /// prefixed so it cannot overwrite or duplicate them. (`MESSAGE_ID` is deliberately
    /// not here: a `MESSAGE_ID` metadata key *is* the journal's MESSAGE_ID.)
    public static let reserved: Set<String> = [
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
    ]

    /// The journald field name for a metadata key: ASCII letters uppercased, every other
    /// character that is not `A-Z0-9` turned into `_`; keys that would start with `_` or a
    /// digit (or are empty, or reserved) get ``prefix``. Cut to 64 characters.
    ///
    /// `quorum.master` → `QUORUM_MASTER`, `1st` → `QUORUM_1ST`, `_x` → `QUORUM__X`.
    public static func make(_ key: String) -> String {
        var name = ""
        name.unicodeScalars.reserveCapacity(key.unicodeScalars.count)
        for scalar in key.unicodeScalars {
            switch scalar.value {
            case 0x41...0x5A, 0x30...0x39: name.unicodeScalars.append(scalar)
            case 0x61...0x7A: name.unicodeScalars.append(Unicode.Scalar(scalar.value - 0x20)!)
            default: name.unicodeScalars.append("_")
            }
        }
        let first = name.unicodeScalars.first
        if first == nil || first == "_" || (first!.value >= 0x30 && first!.value <= 0x39)
            || reserved.contains(name)
        {
            name = prefix + name
        }
        if name.utf8.count > 64 { name = String(name.prefix(64)) }
        return name
    }
}
