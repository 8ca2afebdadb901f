#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QuorumControl
import Testing

@Suite("Finding the node's socket")
struct LocatorTests {
    @Test func theOnlyNodeIsFound() throws {
        let run = try makeTemporaryDirectory()
        defer { removeDirectory(run) }
        try FileManager.default.createDirectory(atPath: run + "/B", withIntermediateDirectories: false)
        let fd = try bindPlainSocket(at: run + "/B/control.sock")
        defer { close(fd) }
        // Directories without a socket, or with something else named control.sock, do not count.
        try FileManager.default.createDirectory(atPath: run + "/empty", withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: run + "/plain", withIntermediateDirectories: false)
        _ = FileManager.default.createFile(atPath: run + "/plain/control.sock", contents: Data())

        #expect(try ControlSocketLocator.find(runDirectory: run) == run + "/B/control.sock")
    }

    @Test func severalNodesAreAllNamedInTheError() throws {
        let run = try makeTemporaryDirectory()
        defer { removeDirectory(run) }
        var descriptors: [Int32] = []
        defer { descriptors.forEach { close($0) } }
        for name in ["C", "A", "B"] {
            try FileManager.default.createDirectory(atPath: run + "/" + name, withIntermediateDirectories: false)
            descriptors.append(try bindPlainSocket(at: run + "/\(name)/control.sock"))
        }
        #expect(throws: ControlSocketLocatorError(runDirectory: run, namesFound: ["A", "B", "C"])) {
            try ControlSocketLocator.find(runDirectory: run)
        }
        let message = ControlSocketLocatorError(runDirectory: run, namesFound: ["A", "B", "C"]).description
        #expect(message.contains("A, B, C"))
        #expect(message.contains("-n NAME"))
    }

    @Test func noNodeSaysSo() throws {
        let run = try makeTemporaryDirectory()
        defer { removeDirectory(run) }
        #expect(throws: ControlSocketLocatorError(runDirectory: run, namesFound: [])) {
            try ControlSocketLocator.find(runDirectory: run)
        }
        #expect(throws: ControlSocketLocatorError(runDirectory: run + "/missing", namesFound: [])) {
            try ControlSocketLocator.find(runDirectory: run + "/missing")
        }
        #expect(ControlSocketLocatorError(runDirectory: run, namesFound: []).description.contains("no quorum node"))
    }

    @Test func aNamedNodeHasAFixedPath() {
        #expect(ControlSocketLocator.socketPath(forNode: "B") == "/run/quorum/B/control.sock")
    }
}
