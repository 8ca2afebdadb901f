import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The process's real surroundings, for the arguments of
/// ``NodeSettings/parse(arguments:environment:hostname:readFile:)``.
public enum ProcessContext {
    /// The environment as a dictionary (for a repeated variable, the first one wins, as
    /// getenv). Not `ProcessInfo.processInfo.environment`: that one call keeps 0.6 MB more of
    /// Foundation resident for the life of the node (measured: libFoundationEssentials' RSS in
    /// a test program, 2.05 MB without, 2.63 MB with), a quarter of what issue 16's memory
    /// budget has left.
    public static func environment() -> [String: String] {
        var result: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "="), result[String(text[..<equals])] == nil {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            entry += 1
        }
        return result
    }

    /// The host name (`gethostname`), or an empty string if it cannot be read.
    public static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public struct FileError: Error, CustomStringConvertible {
        public var description: String
    }

    /// A whole file as UTF-8 text (invalid bytes replaced), at most 1 MiB.
    public static func readTextFile(_ path: String) throws -> String {
        do {
            let file = try FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec)
            return try file.closeAfter {
                var bytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 16 * 1024)
                while true {
                    let count = try chunk.withUnsafeMutableBytes { try file.read(into: $0) }
                    if count == 0 { break }
                    bytes.append(contentsOf: chunk[0..<count])
                    if bytes.count > 1 << 20 { throw FileError(description: "larger than 1 MiB") }
                }
                return String(decoding: bytes, as: UTF8.self)
            }
        } catch let error as Errno {
            throw FileError(description: error.description)
        }
    }
}
