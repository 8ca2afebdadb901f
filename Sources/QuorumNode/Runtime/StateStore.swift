import QuorumCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The node's durable state (vote, epoch, membership) in one file of the state directory,
/// replaced atomically: write a temporary file, fsync it, rename it over the old one, fsync
/// the directory. A vote is on disk before the reply that grants it leaves the node.
public struct StateStore: Sendable {
    public let directory: String
    public var path: String { directory + "/state" }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public init(directory: String) { self.directory = directory }

    /// Creates the directory (mode 0750) if it is missing.
    public func prepare() throws(Failure) {
        var built = ""
        for part in directory.split(separator: "/", omittingEmptySubsequences: true) {
            built += "/" + part
            if mkdir(built, 0o750) != 0 && errno != EEXIST {
                throw Failure(description: "cannot create state directory \(built): \(String(cString: strerror(errno)))")
            }
        }
        if access(directory, W_OK) != 0 {
            throw Failure(description: "state directory \(directory) is not writable: \(String(cString: strerror(errno)))")
        }
    }

    /// The saved state, `nil` when there is none yet.
    public func load() throws(Failure) -> PersistentState? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > 1 << 20 { throw Failure(description: "\(path) is too large to be a quorum state file") }
        }
        do {
            return try PersistentState(decoding: bytes)
        } catch {
            throw Failure(description: "\(path): \(error); move it away to start this node afresh")
        }
    }

    public func save(_ state: PersistentState) throws(Failure) {
        try replace(path, with: state.encoded())
    }

    // MARK: - Standby

    /// `quorumctl standby on` (persistent): a file in the state directory holding when it was
    /// turned on, in milliseconds since 1970. Absent: off.
    public var standbyPath: String { directory + "/standby" }

    /// When a persistent standby was turned on, or nil when it is off. An unreadable or
    /// garbled file counts as on (since unknown, 0): standby is the safe side.
    public func loadStandby() -> Int64? {
        let fd = open(standbyPath, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return errno == ENOENT ? nil : 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return 0 }
        let text = String(decoding: buffer[0..<n], as: UTF8.self).split(whereSeparator: \.isWhitespace).first
        return text.flatMap { Int64($0) } ?? 0
    }

    public func saveStandby(since milliseconds: Int64?) throws(Failure) {
        guard let milliseconds else {
            if unlink(standbyPath) != 0 && errno != ENOENT {
                throw Failure(description: "cannot remove \(standbyPath): \(String(cString: strerror(errno)))")
            }
            syncDirectory()
            return
        }
        try replace(standbyPath, with: Array("\(milliseconds)\n".utf8))
    }

    // MARK: - Writing

    /// Replaces `target` atomically and durably: a temporary file, fsync, rename, fsync of the directory.
    private func replace(_ target: String, with bytes: [UInt8]) throws(Failure) {
        let temporary = target + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw Failure(description: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                close(fd)
                throw Failure(description: "cannot write \(temporary): \(reason)")
            }
            written += n
        }
        if fsync(fd) != 0 {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "cannot fsync \(temporary): \(reason)")
        }
        close(fd)
        if rename(temporary, target) != 0 { throw Failure(description: "cannot replace \(target): \(String(cString: strerror(errno)))") }
        syncDirectory()
    }

    private func syncDirectory() {
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            _ = fsync(dir)
            close(dir)
        }
    }
}
