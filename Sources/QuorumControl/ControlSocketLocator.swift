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

/// Finds the control socket of the node to talk to.
///
/// Each node run under systemd (`quorum@NAME`) has its own runtime directory
/// `/run/quorum/NAME/` holding `control.sock`.
public enum ControlSocketLocator {
    public static let defaultRunDirectory = "/run/quorum"
    public static let socketFileName = "control.sock"

    /// `RUN/NAME/control.sock`: where node `name` listens.
    public static func socketPath(forNode name: String, runDirectory: String = defaultRunDirectory) -> String {
        runDirectory + "/" + name + "/" + socketFileName
    }

    /// The only `RUN/*/control.sock` that is a socket.
    ///
    /// Throws when there is none (or `runDirectory` does not exist), or when there are several;
    /// the error then names every node found so the user can pick one with `-n`.
    public static func find(runDirectory: String = defaultRunDirectory) throws(ControlSocketLocatorError) -> String {
        let names = nodeNames(runDirectory: runDirectory)
        switch names.count {
        case 1: return socketPath(forNode: names[0], runDirectory: runDirectory)
        case 0: throw ControlSocketLocatorError(runDirectory: runDirectory, namesFound: [])
        default: throw ControlSocketLocatorError(runDirectory: runDirectory, namesFound: names)
        }
    }

    /// Names of the subdirectories of `runDirectory` that hold a `control.sock` socket, sorted.
    public static func nodeNames(runDirectory: String = defaultRunDirectory) -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: runDirectory) else { return [] }
        return entries.filter { name in
            !name.hasPrefix(".") && isSocket(socketPath(forNode: name, runDirectory: runDirectory))
        }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// `true` when `path` exists and is a socket (symbolic links are followed).
    public static func isSocket(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return info.st_mode & 0o170000 == 0o140000  // S_IFMT, S_IFSOCK
    }
}

/// No single node could be picked: none is running, or several are.
public struct ControlSocketLocatorError: Error, Equatable, Sendable, CustomStringConvertible {
    public var runDirectory: String
    /// The node names found (empty when none).
    public var namesFound: [String]

    public init(runDirectory: String, namesFound: [String]) {
        self.runDirectory = runDirectory
        self.namesFound = namesFound
    }

    public var description: String {
        if namesFound.isEmpty {
            return "no quorum node found on this host (no \(runDirectory)/*/\(ControlSocketLocator.socketFileName)); "
                + "is quorumd running? Name one with -n NAME or --socket PATH"
        }
        return "several quorum nodes run on this host (\(namesFound.joined(separator: ", "))); "
            + "choose one with -n NAME or --socket PATH"
    }
}
