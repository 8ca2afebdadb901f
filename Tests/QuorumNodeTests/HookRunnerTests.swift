import Logging
import QuorumNode
import Synchronization
import QuorumTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Records what the runner logs and reports, for assertions.
final class Recorder: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }
    private let entries = Mutex<[Entry]>([])
    private let done = Mutex<[HookCompletion]>([])

    var logs: [Entry] { entries.withLock { $0 } }
    var completions: [HookCompletion] { done.withLock { $0 } }
    func record(_ entry: Entry) { entries.withLock { $0.append(entry) } }
    func record(_ completion: HookCompletion) { done.withLock { $0.append(completion) } }

    var logger: Logger {
        Logger(label: "hooks") { _ in RecordingLogHandler(recorder: self) }
    }
}

struct RecordingLogHandler: LogHandler {
    let recorder: Recorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        recorder.record(.init(level: event.level, message: "\(event.message)",
                              metadata: metadata.merging(event.metadata ?? [:]) { $1 }))
    }
}

/// Runs `body` with a started runner, then drains it (within a deadline) and stops it.
func withRunner(
    timeout: Duration = .seconds(30),
    recorder: Recorder,
    _ body: (HookRunner) async throws -> Void
) async throws {
    let runner = HookRunner(timeout: timeout, logger: recorder.logger) { recorder.record($0) }
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await runner.run() }
        try await body(runner)
        try await withDeadline(.seconds(30)) { await runner.drain() }
        runner.finish()
        try await group.waitForAll()
    }
}

struct DeadlinePassed: Error {}

/// Runs `operation`, failing the test if it has not finished within `deadline`.
func withDeadline(_ deadline: Duration, _ operation: @escaping @Sendable () async -> Void) async throws {
    try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask { await operation(); return true }
        group.addTask { try await Task.sleep(for: deadline); return false }
        let finished = try await group.next()!
        group.cancelAll()
        if !finished { throw DeadlinePassed() }
    }
}

func hookRun(_ id: UInt64, _ path: String, role: String = "master", previous: String = "discovering",
             master: String? = "B", epoch: UInt64 = 1) -> HookInvocation {
    HookInvocation(id: id, path: path, role: role, previousRole: previous, name: "B", cluster: "quorum", master: master, epoch: epoch)
}

/// `true` once the process no longer exists or is a zombie waiting to be reaped.
func isGone(_ pid: pid_t) -> Bool {
    guard kill(pid, 0) == 0 else { return true }
    guard let stat = readTextFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return true }
    return stat[stat.index(close, offsetBy: 2)] == "Z"
}

extension ProcessWideStateTests {
@Suite("Hook runner")
struct HookRunnerTests {
    @Test("hooks run one at a time, in submission order, and completions come in that order")
    func orderAndNoOverlap() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let log = directory + "/log"
        for (name, pause) in [("first", "0.3"), ("second", "0")] {
            try writeTextFile(directory + "/\(name).sh", """
                #!/bin/sh
                echo "\(name) start $(date +%s%N)" >> \(log)
                sleep \(pause)
                echo "\(name) end $(date +%s%N)" >> \(log)
                """, mode: 0o755)
        }
        let recorder = Recorder()
        try await withRunner(recorder: recorder) { runner in
            runner.submit(hookRun(1, directory + "/first.sh"))
            runner.submit(hookRun(2, directory + "/second.sh", role: "slave", previous: "master"))
        }

        let lines = (readTextFile(log) ?? "").split(separator: "\n").map { $0.split(separator: " ") }
        #expect(lines.map { "\($0[0]) \($0[1])" } == ["first start", "first end", "second start", "second end"])
        let stamps = lines.compactMap { UInt64($0[2]) }
        #expect(stamps.count == 4)
        if stamps.count == 4 { #expect(stamps[2] >= stamps[1], "the second hook started before the first ended") }
        #expect(recorder.completions == [.init(id: 1, outcome: .exited(0)), .init(id: 2, outcome: .exited(0))])
    }

    @Test("a hook sees QUORUM_* variables and the inherited environment")
    func environment() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try writeTextFile(directory + "/env.sh", "#!/bin/sh\nenv > \(directory)/env.out\n", mode: 0o755)
        let recorder = Recorder()
        try await withRunner(recorder: recorder) { runner in
            runner.submit(HookInvocation(id: 7, path: directory + "/env.sh", role: "no-quorum", previousRole: "master",
                                  name: "B", cluster: "lab", master: nil, epoch: 42))
        }
        let lines = Set((readTextFile(directory + "/env.out") ?? "").split(separator: "\n").map(String.init))
        for expected in ["QUORUM_ROLE=no-quorum", "QUORUM_PREVIOUS_ROLE=master", "QUORUM_NAME=B",
                         "QUORUM_CLUSTER=lab", "QUORUM_MASTER=", "QUORUM_EPOCH=42"] {
            #expect(lines.contains(expected), "missing \(expected)")
        }
        let path = String(cString: getenv("PATH"))
        #expect(lines.contains("PATH=\(path)"), "the inherited environment is missing")
        #expect(recorder.completions == [.init(id: 7, outcome: .exited(0))])
    }

    @Test("a .py hook without execute bit or #! runs with python3")
    func pythonHook() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let script = directory + "/i_am_master.py"
        try writeTextFile(script, """
            import os
            here = os.path.dirname(os.path.abspath(__file__))
            with open(os.path.join(here, "py.out"), "w") as f:
                f.write(os.environ["QUORUM_ROLE"] + " " + os.environ["QUORUM_MASTER"])
            print("python says hi")
            """, mode: 0o644)
        #expect(access(script, X_OK) != 0)
        let recorder = Recorder()
        try await withRunner(recorder: recorder) { runner in
            runner.submit(hookRun(3, script, master: "B"))
        }
        #expect(readTextFile(directory + "/py.out") == "master B")
        #expect(recorder.completions == [.init(id: 3, outcome: .exited(0))])
        let output = recorder.logs.first { $0.message == "python says hi" }
        #expect(output?.metadata["quorum.hook"] == .string(script))
        #expect(output?.metadata["quorum.role"] == "master")
        #expect(output?.metadata["quorum.hook.stream"] == "stdout")
    }

    @Test("a hanging hook is killed with its whole process group, and the next hook still runs")
    func hangingHookIsKilled() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try writeTextFile(directory + "/hang.sh", """
            #!/bin/sh
            sleep 60 &
            echo $! > \(directory)/child.pid
            echo $$ > \(directory)/hook.pid
            sleep 60
            """, mode: 0o755)
        try writeTextFile(directory + "/next.sh", "#!/bin/sh\ntouch \(directory)/next.ran\n", mode: 0o755)
        let recorder = Recorder()
        let started = ContinuousClock.now
        try await withRunner(timeout: .milliseconds(500), recorder: recorder) { runner in
            runner.submit(hookRun(1, directory + "/hang.sh"))
            runner.submit(hookRun(2, directory + "/next.sh", role: "slave"))
        }
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(recorder.completions == [.init(id: 1, outcome: .timedOut), .init(id: 2, outcome: .exited(0))])
        #expect(access(directory + "/next.ran", F_OK) == 0)

        let hookPID = pid_t((readTextFile(directory + "/hook.pid") ?? "").filter(\.isNumber))
        let childPID = pid_t((readTextFile(directory + "/child.pid") ?? "").filter(\.isNumber))
        #expect(hookPID != nil && childPID != nil)
        if let hookPID, let childPID {
            #expect(await eventually { isGone(hookPID) && isGone(childPID) }, "the hook or its child survived")
        }
        #expect(recorder.logs.contains { $0.level == .error && $0.message.contains("killing its process group") })
    }

    @Test("a hook that exits is finished, even when a background child it started keeps its output open")
    func backgroundChildDoesNotHoldTheQueue() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try writeTextFile(directory + "/leave.sh", """
            #!/bin/sh
            sleep 60 &
            echo $! > \(directory)/child.pid
            exit 0
            """, mode: 0o755)
        let recorder = Recorder()
        let started = ContinuousClock.now
        try await withRunner(timeout: .seconds(20), recorder: recorder) { runner in
            runner.submit(hookRun(1, directory + "/leave.sh"))
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(recorder.completions == [.init(id: 1, outcome: .exited(0))])
        // Left alone by design (a hook may start a service); the test cleans up after itself.
        if let childPID = pid_t((readTextFile(directory + "/child.pid") ?? "").filter(\.isNumber)) {
            kill(childPID, SIGKILL)
        }
    }

    @Test("a missing hook is logged and its completion still reported")
    func missingHook() async throws {
        let recorder = Recorder()
        try await withRunner(recorder: recorder) { runner in
            runner.submit(hookRun(5, "/nonexistent/quorum/hook.sh"))
        }
        #expect(recorder.completions == [.init(id: 5, outcome: .missing)])
        #expect(recorder.logs.contains { $0.level == .error && $0.metadata["quorum.hook"] == "/nonexistent/quorum/hook.sh" })
    }

    @Test("a failing hook is logged with its status; its stderr reaches the log")
    func failingHook() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try writeTextFile(directory + "/fail.sh", "#!/bin/sh\necho 'something broke' >&2\nexit 3\n", mode: 0o755)
        try writeTextFile(directory + "/plain.txt", "not a hook\n", mode: 0o644)
        let recorder = Recorder()
        try await withRunner(recorder: recorder) { runner in
            runner.submit(hookRun(1, directory + "/fail.sh"))
            runner.submit(hookRun(2, directory + "/plain.txt"))
        }
        #expect(recorder.completions == [.init(id: 1, outcome: .exited(3)), .init(id: 2, outcome: .notExecutable)])
        #expect(recorder.logs.contains { $0.message == "something broke" && $0.metadata["quorum.hook.stream"] == "stderr" })
        #expect(recorder.logs.contains { $0.level == .error && $0.message.contains("exit status 3") })
    }

    @Test("after finish, a submitted hook is reported as not run")
    func submitAfterFinish() async throws {
        let recorder = Recorder()
        let runner = HookRunner(logger: recorder.logger) { recorder.record($0) }
        runner.finish()
        await runner.run()
        runner.submit(hookRun(9, "/bin/true"))
        try await withDeadline(.seconds(5)) { await runner.drain() }
        #expect(recorder.completions == [.init(id: 9, outcome: .notRun)])
    }
}
}
