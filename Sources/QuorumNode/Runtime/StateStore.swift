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
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw Failure(description: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = state.encoded()
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
        if rename(temporary, path) != 0 { throw Failure(description: "cannot replace \(path): \(String(cString: strerror(errno)))") }
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            _ = fsync(dir)
            close(dir)
        }
    }
}
