/// `--check CMD` and its timing: a command run on every node, whose failures make the node
/// ineligible to be master (see ``HealthCheckRunner``).
public struct HealthCheckSettings: Sendable, Equatable {
    /// The program and its arguments, split like a POSIX shell word list but never run by a shell.
    public var command: [String]
    /// The pause between the end of one run and the start of the next.
    public var interval: Duration = Defaults.interval
    /// How long a run may take before its process group is killed (a failure).
    public var timeout: Duration = Defaults.interval
    /// Consecutive failures that make a passing node failing.
    public var fall: Int = Defaults.fall
    /// Consecutive passes that make a failing node passing again.
    public var rise: Int = Defaults.rise

    public enum Defaults {
        public static let interval: Duration = .seconds(1)
        public static let fall = 3
        public static let rise = 2
        public static let intervalRange: ClosedRange<Duration> = .milliseconds(100) ... .seconds(3600)
        public static let maximumTimeout: Duration = .seconds(60)
        public static let countRange = 1...100
    }

    public init(command: [String]) { self.command = command }

    /// The command as the operator would write it again (words with blanks or quotes quoted).
    public var commandText: String {
        command.map { word in
            word.isEmpty || word.contains(where: { $0.isWhitespace || "'\"\\$`".contains($0) })
                ? "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" : word
        }.joined(separator: " ")
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

/// Splits a command line into words as a POSIX shell would, without expanding anything:
/// blanks separate words; 'single quotes' keep everything; "double quotes" keep everything
/// but `\"`, `\\`, `\$` and `` \` ``; a backslash outside quotes keeps the next character.
public enum CommandWords {
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    public static func split(_ line: String) throws(Problem) -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var chars = line.makeIterator()
        while let c = chars.next() {
            switch c {
            case " ", "\t", "\n":
                if inWord { words.append(word) }
                word = ""
                inWord = false
            case "'":
                inWord = true
                var closed = false
                while let q = chars.next() {
                    if q == "'" { closed = true; break }
                    word.append(q)
                }
                guard closed else { throw Problem(description: "a single quote is not closed") }
            case "\"":
                inWord = true
                var closed = false
                while let q = chars.next() {
                    if q == "\"" { closed = true; break }
                    if q == "\\" {
                        guard let next = chars.next() else { break }
                        if !"\"\\$`".contains(next) { word.append("\\") }
                        word.append(next)
                    } else {
                        word.append(q)
                    }
                }
                guard closed else { throw Problem(description: "a double quote is not closed") }
            case "\\":
                inWord = true
                guard let next = chars.next() else { throw Problem(description: "a backslash ends the line") }
                if next != "\n" { word.append(next) }
            default:
                inWord = true
                word.append(c)
            }
        }
        if inWord { words.append(word) }
        return words
    }
}
