import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QuorumControl
import QuorumControlServer
import ServiceLifecycle
import Testing

/// Lets handler calls wait until `expected` of them are in progress at once.
actor Rendezvous {
    let expected: Int
    private var arrived = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private(set) var peak = 0

    init(expected: Int) { self.expected = expected }

    func arriveAndWait() async {
        arrived += 1
        peak = max(peak, arrived)
        if arrived >= expected {
            releaseAll()
        } else {
            await withCheckedContinuation { waiting.append($0) }
        }
    }

    func releaseAll() {
        let all = waiting
        waiting.removeAll()
        all.forEach { $0.resume() }
    }
}

let answerStatus: ControlServer.Handler = { request in
    switch request {
    case .status: .status(Fixtures.quorateStatus)
    case .peers: .peers(Fixtures.peers)
    case .leave: .accepted("B is leaving")
    case .forget(let peer): peer == "A" ? .failure("A is connected; only lost or dispatched nodes can be forgotten") : .accepted("forgot \(peer)")
    case .reload: .reload(ReloadReport(applied: true))
    case .watch: .failure("no stream here")
    case .stepDown: .stepDown(StepDownReport(outcome: .refused, error: "no master to step down (no-quorum)", reason: "no-master"))
    case .standby: .accepted("B is in standby")
    }
}

@Suite("Control server")
struct ServerTests {
    @Test func statusRoundTripThroughTheBlockingClient() async throws {
        try await withServer(handler: answerStatus) { path in
            let response = try await onThread { try ControlClient.send(.status, socketPath: path) }
            #expect(response == .status(Fixtures.quorateStatus))
            let peers = try await onThread { try ControlClient.send(.peers, socketPath: path) }
            #expect(peers == .peers(Fixtures.peers))
            let refused = try await onThread { try ControlClient.send(.forget(peer: "A"), socketPath: path) }
            #expect(refused.isOK == false)
        }
    }

    @Test func fiftyClientsAreServedConcurrently() async throws {
        let clients = 50
        let rendezvous = Rendezvous(expected: clients)
        let handler: ControlServer.Handler = { request in
            // Every call waits here until all fifty are in progress: only a concurrent server passes.
            await rendezvous.arriveAndWait()
            return await answerStatus(request)
        }
        try await withServer(handler: handler) { path in
            let answers = try await withThrowingTaskGroup(of: ControlResponse.self) { group in
                for _ in 0..<clients {
                    group.addTask { try await onThread { try ControlClient.send(.status, socketPath: path, timeout: .seconds(20)) } }
                }
                defer { Task { await rendezvous.releaseAll() } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.count == clients)
            #expect(answers.allSatisfy { $0 == .status(Fixtures.quorateStatus) })
            #expect(await rendezvous.peak == clients)
        }
    }

    @Test func aGarbageLineGetsAnErrorAndTheServerKeepsServing() async throws {
        try await withServer(handler: answerStatus) { path in
            let reply = try await onThread { try rawExchange(path: path, send: Array("this is not json\n".utf8)) }
            let object = try #require(JSONSerialization.jsonObject(with: Data(reply)) as? [String: Any])
            #expect(object["ok"] as? Bool == false)
            #expect((object["error"] as? String)?.contains("not valid JSON") == true)
            #expect(reply.last == UInt8(ascii: "\n"))

            let unknown = try await onThread { try rawExchange(path: path, send: Array("{\"command\":\"explode\"}\n".utf8)) }
            #expect(try ControlResponse.parse(unknown) == .failure(#"unknown command "explode": expected status, peers, leave, forget, reload, watch, step-down or standby"#))

            let binary = try await onThread { try rawExchange(path: path, send: [0xFF, 0x00, 0xC3, 0x28, 0x0A]) }
            #expect(try ControlResponse.parse(binary).isOK == false)

            let after = try await onThread { try ControlClient.send(.status, socketPath: path) }
            #expect(after == .status(Fixtures.quorateStatus))
        }
    }

    @Test func anOversizedLineGetsAnErrorAndTheServerKeepsServing() async throws {
        try await withServer(handler: answerStatus) { path in
            // 64 KiB without a newline: the server must answer once 4096 bytes are exceeded.
            let huge = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
            let reply = try await onThread { try rawExchange(path: path, send: huge) }
            let response = try ControlResponse.parse(reply)
            guard case .failure(let message) = response else { Issue.record("expected a failure, got \(response)"); return }
            #expect(message.contains("4096"))

            // One byte over the limit, newline-terminated, is refused too; exactly at the limit is served.
            let over = Array((#"{"command":"status"}"# + String(repeating: " ", count: 4077)).utf8) + [0x0A]
            #expect(over.count == 4098)
            #expect(try ControlResponse.parse(try await onThread { try rawExchange(path: path, send: over) }).isOK == false)
            let fitting = Array((#"{"command":"status"}"# + String(repeating: " ", count: 4076)).utf8) + [0x0A]
            #expect(fitting.count == 4097)
            #expect(try ControlResponse.parse(try await onThread { try rawExchange(path: path, send: fitting) }) == .status(Fixtures.quorateStatus))

            let after = try await onThread { try ControlClient.send(.status, socketPath: path) }
            #expect(after == .status(Fixtures.quorateStatus))
        }
    }

    @Test func aRequestEndedByHalfCloseInsteadOfNewlineIsAnswered() async throws {
        try await withServer(handler: answerStatus) { path in
            let reply = try await onThread { try rawExchange(path: path, send: Array(#"{"command":"leave"}"#.utf8), halfClose: true) }
            #expect(try ControlResponse.parse(reply) == .accepted("B is leaving"))
        }
    }

    @Test func aSilentClientIsDisconnectedAfterTheRequestTimeout() async throws {
        let configuration = ControlServer.Configuration(requestTimeout: .milliseconds(200))
        let calls = Counter()
        let handler: ControlServer.Handler = { request in
            calls.increment()
            return await answerStatus(request)
        }
        try await withServer(configuration: configuration, handler: handler) { path in
            let started = ContinuousClock.now
            // Says nothing: the server closes, so the read ends with EOF well before the client's 5 s.
            let silent = try await onThread { try rawExchange(path: path, send: []) }
            #expect(silent.isEmpty)
            #expect(ContinuousClock.now - started < .seconds(4))
            // Says half a request and stalls: closed too, and the partial request is never acted on.
            let partial = try await onThread { try rawExchange(path: path, send: Array(#"{"command":"leave"}"#.utf8)) }
            #expect(partial.isEmpty)
            #expect(calls.value == 0)
        }
    }

    @Test func aRequestSentInTimeIsAnsweredThoughItsAnswerTakesLongerThanTheTimeout() async throws {
        // The deadline is for sending the request line, not for answering it (the reading task
        // may also run late on a loaded machine).
        let configuration = ControlServer.Configuration(requestTimeout: .milliseconds(200))
        let handler: ControlServer.Handler = { request in
            try? await Task.sleep(for: .milliseconds(600))
            return await answerStatus(request)
        }
        try await withServer(configuration: configuration, handler: handler) { path in
            let reply = try await onThread { try rawExchange(path: path, send: Array("{\"command\":\"status\"}\n".utf8)) }
            #expect(!reply.isEmpty, "the answer was lost")
            #expect((try? ControlResponse.parse(reply)).map { if case .status = $0 { true } else { false } } == true)
        }
    }

    @Test func anOversizedRequestIsAnsweredThoughTheReadingTaskStartsAfterTheTimeout() async throws {
        // The server knows it must refuse once more bytes than a request may have have arrived,
        // so that too meets the deadline. The caller check stands in for a reading task that is
        // late on a loaded machine: it holds the task past the 100 ms timeout.
        var configuration = ControlServer.Configuration(requestTimeout: .milliseconds(100))
        configuration.authorize = { _ in
            usleep(300_000)
            return nil
        }
        try await withServer(configuration: configuration, handler: answerStatus) { path in
            let huge = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
            let reply = try await onThread { try rawExchange(path: path, send: huge) }
            #expect(!reply.isEmpty, "the answer was lost")
            guard case .failure(let message)? = try? ControlResponse.parse(reply) else {
                Issue.record("expected a failure, got \(String(decoding: reply, as: UTF8.self))")
                return
            }
            #expect(message.contains("4096"))
        }
    }

    @Test func theSocketFileIsGroupReadableAndWritableOnly() async throws {
        try await withServer(handler: answerStatus) { path in
            var info = stat()
            #expect(stat(path, &info) == 0)
            #expect(info.st_mode & 0o7777 == 0o660)
            #expect(ControlSocketLocator.isSocket(path))
        }
    }

    @Test func gracefulShutdownStopsTheServerAndRemovesTheSocketFile() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/run/B/control.sock"  // parent directories do not exist yet
        let server = try await ControlServer.bind(socketPath: path, handler: answerStatus)
        var info = stat()
        #expect(stat(directory + "/run/B", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o750)
        // Bound before running: a client connecting now waits in the backlog and is answered once it runs.
        let group = ServiceGroup(services: [server], logger: .init(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let response = try await onThread { try ControlClient.send(.status, socketPath: path) }
            #expect(response == .status(Fixtures.quorateStatus))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(throws: ControlClientError(.noSuchSocket, socketPath: path)) {
            try ControlClient.send(.status, socketPath: path)
        }
    }

    @Test func aStaleSocketIsReplacedButALiveOneIsNotTakenOver() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/control.sock"
        // A socket file left by a node that died: nobody listens on it.
        close(try bindPlainSocket(at: path))
        #expect(throws: ControlClientError(.notListening, socketPath: path)) {
            try ControlClient.send(.status, socketPath: path)
        }
        let server = try await ControlServer.bind(socketPath: path, handler: answerStatus)
        await #expect(throws: ControlServerError.self) {
            _ = try await ControlServer.bind(socketPath: path, handler: answerStatus)
        }
        // The refused second bind left the first server's socket alone.
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await server.run() }
            #expect(try await onThread { try ControlClient.send(.status, socketPath: path) } == .status(Fixtures.quorateStatus))
            tasks.cancelAll()
            try await tasks.waitForAll()
        }
        // Something that is not a socket is never deleted.
        _ = FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8))
        await #expect(throws: ControlServerError.self) {
            _ = try await ControlServer.bind(socketPath: path, handler: answerStatus)
        }
        #expect(FileManager.default.contents(atPath: path) == Data("keep me".utf8))
    }

    @Test func theClientGivesUpOnANodeThatNeverAnswers() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/control.sock"
        let fd = try bindPlainSocket(at: path)  // listens, never accepts: the connection waits in the backlog
        defer { close(fd) }
        let started = ContinuousClock.now
        #expect(throws: ControlClientError(.noAnswer, socketPath: path, detail: "no answer within 0.3 s")) {
            try ControlClient.send(.status, socketPath: path, timeout: .milliseconds(300))
        }
        #expect(ContinuousClock.now - started < .seconds(3))
    }
}

/// A thread-safe counter for handler calls.
final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
