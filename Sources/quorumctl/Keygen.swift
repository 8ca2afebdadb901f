import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `quorumctl keygen`: a new random 256-bit cluster key, in the key-file format quorumd
/// reads (`ID HEX`), written with mode 0600. It never overwrites an existing file.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a new random cluster key file (mode 0600).",
        discussion: """
            Copy the same file to every node (for example /etc/quorum/cluster.key) and set \
            key-file to it. To rotate keys, see docs/security.md: a key file may hold two \
            keys, the first one seals, both are accepted.
            """)

    @Option(name: .shortAndLong, help: ArgumentHelp("Where to write the key.", valueName: "PATH"), completion: .file())
    var output: String = "/etc/quorum/cluster.key"

    @Option(help: ArgumentHelp("The key id, 0-255 (use a new id for each new key).", valueName: "ID"))
    var id: UInt8 = 1

    func run() throws {
        // The system generator is cryptographically secure (getrandom(2) on Linux).
        var generator = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let hex = key.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        let text = "# quorum cluster key, made by quorumctl keygen. Keep it secret: mode 0600.\n\(id) \(hex)\n"
        let fd = open(output, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let reason = errno == EEXIST ? "it already exists (remove it first, or choose another --output)" : String(cString: strerror(errno))
            throw failure("cannot create \(output): \(reason)")
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count, fsync(fd) == 0 else { throw failure("cannot write \(output): \(String(cString: strerror(errno)))") }
        print("wrote a new cluster key (id \(id)) to \(output)")
    }

    private func failure(_ message: String) -> Error {
        FileHandle.standardError.write(Data("quorumctl: \(message)\n".utf8))
        return ExitCode(1)
    }
}
