#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import QuorumControl

struct FileIdentity: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
}

/// The file-system side of the socket: its directory, stale leftovers, removal.
enum SocketFile {
    static func prepare(_ path: String, directoryMode: Int) throws {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true,
                    attributes: [.posixPermissions: directoryMode])
            } catch {
                throw ControlServerError(socketPath: path, problem: "cannot create its directory \(directory): \(error)")
            }
        }
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // nothing there: fine
        guard info.st_mode & 0o170000 == 0o140000 else {
            throw ControlServerError(
                socketPath: path, problem: "the path exists and is not a socket; remove it or choose another path")
        }
        if someoneListens(path) {
            throw ControlServerError(
                socketPath: path, problem: "another process is already serving it (is this node already running?)")
        }
        // A socket nobody listens on: left behind by a process that died. Replace it.
        guard unlink(path) == 0 || errno == ENOENT else {
            throw ControlServerError(
                socketPath: path, problem: "cannot remove the stale socket: \(String(cString: strerror(errno)))")
        }
    }

    static func identity(_ path: String) -> FileIdentity? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Removes the socket file if it is still the one we bound (`expected`), or unconditionally
    /// when `expected` is `nil`.
    static func remove(_ path: String, ifStill expected: FileIdentity?) {
        if let expected, identity(path) != expected { return }
        unlink(path)
    }

    /// `true` when connecting to the socket at `path` succeeds.
    static func someoneListens(_ path: String) -> Bool {
        let fd = UnixSocket.stream()
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return UnixSocket.connect(fd, to: path) == 0
    }
}
