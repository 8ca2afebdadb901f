import Foundation
import QuorumTestSupport
import Testing
@testable import QuorumNode

@Suite("Journal catalog")
struct CatalogTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("Every MESSAGE_ID the node logs has one catalog entry with a subject, and the catalog has no other")
    func everyIDExplained() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("packaging/systemd/quorum.catalog"), encoding: .utf8)
        let headers = text.split(separator: "\n").filter { $0.hasPrefix("-- ") }.map { String($0.dropFirst(3)) }
        #expect(headers.sorted() == MessageID.allCases.map(\.rawValue).sorted())
        #expect(Set(headers).count == headers.count, "each id once")
        for entry in text.components(separatedBy: "\n-- ").dropFirst() {
            #expect(entry.contains("\nSubject: quorum ") && entry.contains("\nDefined-By: quorum\n"), "\(entry.prefix(40))")
        }
    }

    @Test("journalctl compiles the catalog with every entry")
    func journalctlReadsIt() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/journalctl") else { return }
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try FileManager.default.createDirectory(atPath: directory + "/usr/lib/systemd/catalog", withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Self.root.appendingPathComponent("packaging/systemd/quorum.catalog").path,
            toPath: directory + "/usr/lib/systemd/catalog/quorum.catalog")
        func journalctl(_ arguments: [String]) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/journalctl")
            process.arguments = ["--root=\(directory)"] + arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "journalctl \(arguments): \(String(decoding: output, as: UTF8.self))")
            return String(decoding: output, as: UTF8.self)
        }
        _ = try journalctl(["--update-catalog"])
        let listed = try journalctl(["--list-catalog"])
        for id in MessageID.allCases { #expect(listed.contains(id.rawValue), "\(id)") }
    }
}
