import Foundation
import QuorumControl
import QuorumControlServer
import QuorumCore
import Testing

/// The result of running the built `quorumctl` binary.
struct Run: Sendable {
    var status: Int32
    var standardOutput: String
    var standardError: String
}

/// Finds the `quorumctl` built next to this test bundle (`swift test` builds every product).
func quorumctlBinary() throws -> URL {
    var candidates: [URL] = []
    let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    // …/debug/quorumPackageTests.xctest (a file on Linux, a bundle directory on macOS).
    var directory = argv0.deletingLastPathComponent()
    for _ in 0..<4 {
        candidates.append(directory.appendingPathComponent("quorumctl"))
        directory = directory.deletingLastPathComponent()
    }
    candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("quorumctl"))
    // …/Tests/QuorumControlTests/QuorumctlTests.swift → package root → .build/debug/quorumctl
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    candidates.append(packageRoot.appendingPathComponent(".build/debug/quorumctl"))
    for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
        return candidate
    }
    throw TestFailure("quorumctl binary not found (looked in \(candidates.map(\.path))); build it with `swift build --product quorumctl`")
}

/// Runs `quorumctl arguments…` on its own thread and collects its output and exit status.
func quorumctl(_ arguments: [String], environment: [String: String]? = nil) async throws -> Run {
    let binary = try quorumctlBinary()
    return try await onThread {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let outPath = directory + "/out", errPath = directory + "/err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Run(
            status: process.terminationStatus,
            standardOutput: String(decoding: FileManager.default.contents(atPath: outPath) ?? Data(), as: UTF8.self),
            standardError: String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self))
    }
}

@Suite("quorumctl exit codes and output")
struct QuorumctlTests {
    private func handler(_ status: StatusReport) -> ControlServer.Handler {
        { request in
            switch request {
            case .status: .status(status)
            case .peers: .peers(Fixtures.peers)
            case .leave: .accepted("B told its peers and is stopping")
            case .forget(let peer): peer == "A" ? .failure("A is connected; only lost or dispatched nodes can be forgotten") : .accepted("forgot \(peer)")
            case .reload: reloadAnswer
            case .watch: .failure("no stream here")
            case .stepDown(let to, _): Self.stepDownAnswer(to)
            case .standby(let on, let untilRestart): .accepted("B standby \(on ? "on" : "off")\(untilRestart ? " until restart" : "")")
            }
        }
    }

    static func stepDownAnswer(_ to: String?) -> ControlResponse {
        switch to {
        case "Z": .stepDown(StepDownReport(outcome: .refused, error: "no member named Z", reason: "unknown-member"))
        case "slow": .stepDown(StepDownReport(outcome: .notConfirmed, from: "A", previousEpoch: 8, error: "no handover within 10s; A is master (epoch 9)", reason: "not-confirmed"))
        default: .stepDown(StepDownReport(outcome: .done, from: "A", to: to ?? "C", previousEpoch: 8, epoch: 9, durationSeconds: 0.014))
        }
    }

    @Test("step-down prints the handover and exits 0; a refusal exits 1; no handover in time exits 3; --json carries ok and reason")
    func stepDownExitCodes() async throws {
        try await withServer(handler: handler(Fixtures.quorateStatus)) { path in
            let done = try await quorumctl(["--socket", path, "step-down", "--to", "C"])
            #expect(done.status == 0 && done.standardOutput == "stepped down: A -> C (epoch 8 -> 9) in 14 ms\n", "\(done.standardError)")
            let refused = try await quorumctl(["--socket", path, "step-down", "--to", "Z"])
            #expect(refused.status == 1 && refused.standardOutput.isEmpty && refused.standardError == "quorumctl: no member named Z\n")
            let late = try await quorumctl(["--socket", path, "step-down", "--to", "slow", "--timeout", "2s"])
            #expect(late.status == 3 && late.standardError.contains("no handover within 10s"))
            let json = try await quorumctl(["--socket", path, "step-down", "--to", "Z", "--json"])
            #expect(json.status == 1 && json.standardOutput.contains("\"ok\" : false") && json.standardOutput.contains("\"reason\" : \"unknown-member\""))
            let badTimeout = try await quorumctl(["--socket", path, "step-down", "--timeout", "500ms"])
            #expect(badTimeout.status == 64 && badTimeout.standardError.contains("1s to 300s"))
            let standby = try await quorumctl(["--socket", path, "standby", "on", "--until-restart"])
            #expect(standby.status == 0 && standby.standardOutput == "B standby on until restart\n")
            let wrong = try await quorumctl(["--socket", path, "standby", "maybe"])
            #expect(wrong.status == 64)
        }
    }

    private var reloadAnswer: ControlResponse { .reload(ReloadReport(applied: true, changed: ["log-level": ["info", "debug"]])) }

    @Test func reloadPrintsWhatChangedOrExitsOneWithWhyNot() async throws {
        try await withServer(handler: handler(Fixtures.quorateStatus)) { path in
            let run = try await quorumctl(["--socket", path, "reload"])
            #expect(run.status == 0 && run.standardOutput == "reloaded: log-level info -> debug\n", "\(run.standardError)")
        }
        let refused: ControlServer.Handler = { _ in .reload(ReloadReport(applied: false, errors: ["name A -> B needs a restart"])) }
        try await withServer(handler: refused) { path in
            let run = try await quorumctl(["--socket", path, "reload"])
            #expect(run.status == 1 && run.standardOutput.isEmpty)
            #expect(run.standardError == "quorumctl: reload refused: name A -> B needs a restart\n")
            let json = try await quorumctl(["--socket", path, "reload", "--json"])
            #expect(json.status == 1 && json.standardOutput.contains("\"applied\" : false"), "\(json.standardOutput)")
        }
    }

    @Test func versionNamesTheProtocol() async throws {
        let run = try await quorumctl(["--version"])
        #expect(run.status == 0 && run.standardOutput.hasPrefix("quorumctl \(BuildInfo.version) (protocol \(WireFormat.version), build "), "\(run.standardOutput)")
    }

    @Test func statusJSONOfAQuorateNodeExitsZero() async throws {
        try await withServer(handler: handler(Fixtures.quorateStatus)) { path in
            let run = try await quorumctl(["--socket", path, "status", "--json"])
            #expect(run.status == 0, "stderr: \(run.standardError)")
            let object = try #require(JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
            #expect(object["name"] as? String == "B")
            #expect(object["master"] as? String == "A")
            #expect(object["quorate"] as? Bool == true)
            #expect(object["clusterSize"] as? Int == 3)
            #expect(run.standardError.isEmpty)
        }
    }

    @Test func statusOfANodeWithoutQuorumPrintsThenExitsTwo() async throws {
        try await withServer(handler: handler(Fixtures.lonelyStatus)) { path in
            let json = try await quorumctl(["--socket", path, "status", "--json"])
            #expect(json.status == 2)
            let object = try #require(JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
            #expect(object["master"] is NSNull)
            #expect(object["quorate"] as? Bool == false)

            let table = try await quorumctl(["status", "--socket", path])
            #expect(table.status == 2)
            #expect(table.standardOutput == Fixtures.lonelyStatus.table)
        }
    }

    @Test func peersLeaveAndForgetExitZeroAndForgetRefusedExitsOne() async throws {
        try await withServer(handler: handler(Fixtures.quorateStatus)) { path in
            let peers = try await quorumctl(["--socket", path, "peers"])
            #expect(peers.status == 0)
            #expect(peers.standardOutput == PeerReport.table(Fixtures.peers))

            let peersJSON = try await quorumctl(["--socket", path, "peers", "--json"])
            #expect(peersJSON.status == 0)
            let array = try #require(JSONSerialization.jsonObject(with: Data(peersJSON.standardOutput.utf8)) as? [[String: Any]])
            #expect(array.map { $0["name"] as? String } == ["A", "long-node.name_2"])

            let leave = try await quorumctl(["--socket", path, "leave"])
            #expect(leave.status == 0)
            #expect(leave.standardOutput == "B told its peers and is stopping\n")

            let forget = try await quorumctl(["--socket", path, "forget", "C"])
            #expect(forget.status == 0)

            let refused = try await quorumctl(["--socket", path, "forget", "A"])
            #expect(refused.status == 1)
            #expect(refused.standardError.hasPrefix("quorumctl: the node refused: A is connected"))
        }
    }

    @Test func anUnreachableNodeExitsOneWithAMessageOnStandardError() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let run = try await quorumctl(["--socket", directory + "/control.sock", "status"])
        #expect(run.status == 1)
        #expect(run.standardOutput.isEmpty)
        #expect(run.standardError.hasPrefix("quorumctl: cannot reach the node: no control socket at \(directory)/control.sock"))
    }

    @Test(arguments: [
        [], ["bogus"], ["status", "--bogus"], ["forget"], ["forget", "not a name"], ["-n", "B", "--socket", "/x", "status"],
        ["-n", "bad/name", "peers"], ["status", "extra"],
    ])
    func wrongUsageExitsSixtyFourWithUsageOnStandardError(_ arguments: [String]) async throws {
        let run = try await quorumctl(arguments)
        #expect(run.status == 64, "quorumctl \(arguments): \(run.standardError)")
        #expect(run.standardOutput.isEmpty)
        #expect(run.standardError.contains("Usage: quorumctl"))
    }

    @Test func helpAndCompletionScriptsExitZero() async throws {
        let help = try await quorumctl(["--help"])
        #expect(help.status == 0)
        #expect(help.standardOutput.contains("forget"))
        let bash = try await quorumctl(["--generate-completion-script", "bash"])
        #expect(bash.status == 0)
        #expect(bash.standardOutput.contains("complete -o filenames -F _quorumctl quorumctl")
            || bash.standardOutput.contains("_quorumctl"))
    }
}
