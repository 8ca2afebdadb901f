import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import QuorumControl
import Testing

/// One run of a role hook, as the test hooks record it: one line per run,
/// `<start ns> <name> <QUORUM_ROLE> <QUORUM_EPOCH> <master|slave> <QUORUM_PREVIOUS_ROLE> <QUORUM_MASTER> <end ns> <QUORUM_CLUSTER>`
/// (CLOCK_MONOTONIC nanoseconds; `-` for an empty value).
struct HookRecord: Equatable, Sendable, CustomStringConvertible {
    /// When the hook started and finished, CLOCK_MONOTONIC ns.
    var start: UInt64
    var end: UInt64
    var name: String
    var role: String
    var epoch: UInt64?
    /// Which hook ran: `master` or `slave`.
    var hook: String
    var previousRole: String?
    var master: String?
    var cluster: String?

    init?(line: Substring) {
        let f = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard f.count >= 8, let start = UInt64(f[0]), let end = UInt64(f[7]) else { return nil }
        self.start = start
        self.end = end
        name = f[1]
        role = f[2]
        epoch = UInt64(f[3])
        hook = f[4]
        previousRole = f[5] == "-" ? nil : f[5]
        master = f[6] == "-" ? nil : f[6]
        cluster = f.count > 8 && f[8] != "-" ? f[8] : nil
    }

    var description: String {
        "\(name): \(hook) hook, role \(role), previous \(previousRole ?? "-"), master \(master ?? "-"), epoch \(epoch.map(String.init) ?? "-") at \(start)…\(end)"
    }
}

/// A cluster of real `quorumd` processes on loopback, for one test.
///
/// Every node listens on 127.0.0.1 at a port of its own and discovers the others through the
/// loopback broadcast address 127.255.255.255 on a discovery port that only this cluster uses,
/// so clusters of tests that run side by side never see each other. State directories, control
/// sockets, logs and the hook log live in a fresh `/tmp/qt-XXXXXX` directory (short, so socket
/// paths stay far below the 108-byte limit). ``teardown()`` SIGKILLs every node and removes it.
final class LocalCluster: Sendable {
    static let broadcastAddress = "127.255.255.255"

    /// What the cluster knows about one node (by name).
    struct Node: Sendable {
        let name: String
        let index: Int
        let port: UInt16
        let stateDirectory: String
        let socketPath: String
        let logPath: String
        var arguments: [String] = []
        var environment: [String: String] = [:]
        var pid: pid_t?
        var exitStatus: ExitStatus?
        /// CLOCK_MONOTONIC ns just before the latest start.
        var startedAt: UInt64 = 0
        var starts = 0
    }

    let directory: String
    let broadcastPort: UInt16
    let quorumd: String
    let quorumctl: String
    /// Where the test hooks append one line per run.
    let hookLogPath: String
    let masterHook: String
    let slaveHook: String
    /// The CLOCK_MONOTONIC helper the hooks call (a compiled C program, or a shell fallback).
    let monotimeCommand: String

    /// What changes while the test runs, behind one lock.
    private struct State {
        var nodes: [String: Node] = [:]
        var order: [String] = []
        var torndown = false
        var failed = false
    }
    private let state = Mutex(State())

    /// Set when the test failed: teardown then prints every node's log.
    var failed: Bool {
        get { state.withLock { $0.failed } }
        set { state.withLock { $0.failed = newValue } }
    }

    /// - Parameter hookSeconds: how long each test hook takes (a `sleep` between its two
    ///   timestamps), to make hook ordering observable.
    init(hookSeconds: Double = 0) throws {
        var template = Array("/tmp/qt-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw IntegrationError("mkdtemp: \(errnoText())") }
        directory = String(cString: made)
        do {
            quorumd = try Self.binary("quorumd")
            quorumctl = try Self.binary("quorumctl")
            broadcastPort = try PortAllocator.udpPort()
            hookLogPath = directory + "/hooks.log"
            masterHook = directory + "/master-hook"
            slaveHook = directory + "/slave-hook"
            _ = FileManager.default.createFile(atPath: hookLogPath, contents: nil)
            monotimeCommand = Self.buildMonotime(in: directory)
            for (path, kind) in [(masterHook, "master"), (slaveHook, "slave")] {
                try writeExecutable(path, Self.hookScript(kind: kind, hookSeconds: hookSeconds, monotime: monotimeCommand, hookLogPath: hookLogPath))
            }
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    deinit { teardown() }

    // MARK: Binaries and hooks

    /// `quorumd` / `quorumctl`: `$QUORUMD` / `$QUORUMCTL` if set, else next to the test bundle
    /// (`swift test` builds every product into the same directory), else `.build/debug`.
    static func binary(_ name: String) throws -> String {
        if let path = ProcessInfo.processInfo.environment[name.uppercased()], !path.isEmpty { return path }
        var candidates: [String] = []
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(directory.appendingPathComponent(name).path)
            directory = directory.deletingLastPathComponent()
        }
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(name).path)
        let packageRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/\(name)").path)
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw IntegrationError("\(name) not found (looked in \(candidates)); build it with `swift build`")
    }

    /// Compiles a tiny CLOCK_MONOTONIC printer with `cc` (a few tens of ms); falls back to
    /// /proc/uptime (10 ms resolution) if there is no C compiler.
    private static func buildMonotime(in directory: String) -> String {
        let source = directory + "/monotime.c", binary = directory + "/monotime"
        let program = """
            #include <stdio.h>
            #include <time.h>
            int main(void) {
                struct timespec t;
                clock_gettime(CLOCK_MONOTONIC, &t);
                printf("%lld\\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
                return 0;
            }
            """
        if FileManager.default.createFile(atPath: source, contents: Data(program.utf8)) {
            for cc in ["/usr/bin/cc", "/usr/bin/gcc", "/usr/bin/clang"] where FileManager.default.isExecutableFile(atPath: cc) {
                if let pid = try? spawnChild(
                    executable: cc, arguments: ["-O2", "-o", binary, source],
                    environment: ["PATH": "/usr/bin:/bin"], output: .combined(directory + "/monotime.build.log")),
                    waitForChild(pid, timeout: .seconds(30)) == .exited(0),
                    FileManager.default.isExecutableFile(atPath: binary)
                {
                    return binary
                }
            }
        }
        return "awk '{printf \"%.0f\", $1 * 1000000000}' /proc/uptime"
    }

    private static func hookScript(kind: String, hookSeconds: Double, monotime: String, hookLogPath: String) -> String {
        """
        #!/bin/sh
        # quorum integration test \(kind) hook: appends one line per run to the cluster's hook log.
        start=$(\(monotime))
        \(hookSeconds > 0 ? "sleep \(hookSeconds)" : ":")
        end=$(\(monotime))
        printf '%s %s %s %s %s %s %s %s %s\\n' "$start" "${QUORUM_NAME:--}" "${QUORUM_ROLE:--}" "${QUORUM_EPOCH:--}" \(kind) \
            "${QUORUM_PREVIOUS_ROLE:--}" "${QUORUM_MASTER:--}" "$end" "${QUORUM_CLUSTER:--}" >> '\(hookLogPath)'
        echo "test \(kind) hook ran: role=$QUORUM_ROLE epoch=$QUORUM_EPOCH master=$QUORUM_MASTER"

        """
    }

    /// Writes a file with mode 0755.
    func writeExecutable(_ path: String, _ text: String) throws {
        try writeFile(path, text, mode: 0o755)
    }

    func writeFile(_ path: String, _ text: String, mode: Int = 0o644) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
            throw IntegrationError("cannot write \(path)")
        }
    }

    /// Every hook run recorded so far, in the order they started.
    func hookRuns() -> [HookRecord] {
        let text = (try? String(contentsOfFile: hookLogPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap(HookRecord.init(line:)).sorted { $0.start < $1.start }
    }

    func hookRuns(of name: String) -> [HookRecord] { hookRuns().filter { $0.name == name } }

    // MARK: Nodes

    /// The node's fixed settings (port, state directory, control socket, log), made on first use.
    @discardableResult
    func prepare(_ name: String) throws -> Node {
        let port = try PortAllocator.tcpPort()
        return state.withLock { s in
            if let node = s.nodes[name] { return node }
            let index = s.order.count
            let node = Node(
                name: name, index: index, port: port,
                stateDirectory: directory + "/state-\(index)", socketPath: directory + "/n\(index).sock",
                logPath: directory + "/node-\(index).log")
            s.nodes[name] = node
            s.order.append(name)
            return node
        }
    }

    func node(_ name: String) throws -> Node {
        guard let node = state.withLock({ $0.nodes[name] }) else { throw IntegrationError("no node named \(name) in this cluster") }
        return node
    }

    var names: [String] { state.withLock { $0.order } }

    /// The usual command line of node `name`:
    /// `127.0.0.1 PORT 127.255.255.255 BPORT -n NAME --state-dir … --control-socket … -d -m HOOK -s HOOK`.
    func standardArguments(_ name: String, hooks: Bool = true) throws -> [String] {
        let node = try prepare(name)
        var arguments = [
            "127.0.0.1", String(node.port), Self.broadcastAddress, String(broadcastPort),
            "-n", name, "--state-dir", node.stateDirectory, "--control-socket", node.socketPath, "-d",
        ]
        if hooks { arguments += ["-m", masterHook, "-s", slaveHook] }
        return arguments
    }

    /// Starts node `name` with the standard arguments followed by `extraArgs`.
    @discardableResult
    func start(_ name: String, _ extraArgs: [String] = [], hooks: Bool = true, environment: [String: String] = [:]) throws -> pid_t {
        try launch(name, arguments: try standardArguments(name, hooks: hooks) + extraArgs, environment: environment)
    }

    /// Starts node `name` with exactly `arguments` (the test supplies everything, using
    /// ``prepare(_:)`` for the paths).
    @discardableResult
    func launch(_ name: String, arguments: [String], environment: [String: String] = [:]) throws -> pid_t {
        var node = try prepare(name)
        if let pid = node.pid, node.exitStatus == nil, reapIfExited(pid) == nil {
            throw IntegrationError("node \(name) is still running (pid \(pid))")
        }
        var env = ProcessInfo.processInfo.environment
        for key in [
            "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
            "JOURNAL_STREAM", "INVOCATION_ID", "STATE_DIRECTORY", "RUNTIME_DIRECTORY", "CONFIGURATION_DIRECTORY",
        ] {
            env[key] = nil
        }
        env.merge(environment) { $1 }
        if node.starts > 0 {
            appendToLog(node.logPath, "\n===== test: restarting \(name) (start #\(node.starts + 1)) =====\n")
        }
        node.arguments = arguments
        node.environment = environment
        node.startedAt = monotonicNanoseconds()
        let pid = try spawnChild(executable: quorumd, arguments: arguments, environment: env, output: .combined(node.logPath))
        node.pid = pid
        node.exitStatus = nil
        node.starts += 1
        state.withLock { $0.nodes[name] = node }
        return pid
    }

    /// Starts `name` again with the same arguments (same name, port, state directory and socket),
    /// once its previous process has ended (waits up to 10 s for that).
    @discardableResult
    func restart(_ name: String) async throws -> pid_t {
        let node = try node(name)
        _ = try await waitForExit(name, timeout: .seconds(10))
        return try launch(name, arguments: node.arguments, environment: node.environment)
    }

    private func appendToLog(_ path: String, _ text: String) {
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        handle.seekToEndOfFile()
        handle.write(Data(text.utf8))
        try? handle.close()
    }

    func pid(_ name: String) throws -> pid_t {
        guard let pid = try node(name).pid else { throw IntegrationError("node \(name) was never started") }
        return pid
    }

    func signal(_ name: String, _ signal: Int32) throws {
        let pid = try pid(name)
        guard Glibc.kill(pid, signal) == 0 else { throw IntegrationError("kill(\(pid), \(signal)) for \(name): \(errnoText())") }
    }

    /// SIGKILL (a crash: no goodbye), and waits until the process is gone.
    func kill(_ name: String) async throws {
        try signal(name, SIGKILL)
        _ = try await waitForExit(name, timeout: .seconds(10))
    }

    /// SIGTERM: a graceful leave (peers are told). Does not wait; see ``waitForExit(_:timeout:)``.
    func stop(_ name: String) throws { try signal(name, SIGTERM) }

    /// SIGINT: as Ctrl+C, no goodbye. Does not wait.
    func interrupt(_ name: String) throws { try signal(name, SIGINT) }

    /// SIGSTOP / SIGCONT.
    func pause(_ name: String) throws { try signal(name, SIGSTOP) }
    func resume(_ name: String) throws { try signal(name, SIGCONT) }

    /// The node's exit status if it has ended (reaping it), else nil.
    func exitStatus(_ name: String) -> ExitStatus? {
        state.withLock { s in
            guard let node = s.nodes[name], let pid = node.pid else { return nil }
            if let status = node.exitStatus { return status }
            if let status = reapIfExited(pid) {
                s.nodes[name]?.exitStatus = status
                return status
            }
            return nil
        }
    }

    /// Exit statuses of every node that has ended, by name.
    var exitStatuses: [String: ExitStatus] {
        var result: [String: ExitStatus] = [:]
        for name in names { if let status = exitStatus(name) { result[name] = status } }
        return result
    }

    func isRunning(_ name: String) -> Bool {
        guard (try? node(name).pid) != nil else { return false }
        return exitStatus(name) == nil
    }

    /// Waits until node `name` has ended; throws (with every log) if it has not after `timeout`.
    func waitForExit(_ name: String, timeout: Duration = .seconds(10)) async throws -> ExitStatus {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            if let status = exitStatus(name) { return status }
            if ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw IntegrationError("node \(name) still runs \(timeout) after it was asked to stop")
    }

    // MARK: quorumctl

    /// Runs `quorumctl --socket <name's socket> arguments…`.
    func quorumctl(_ name: String, _ arguments: [String], timeout: Duration = .seconds(15)) async throws -> CommandRun {
        let node = try prepare(name)
        return try await runCommand(
            quorumctl, ["--socket", node.socketPath] + arguments, environment: ["PATH": "/usr/bin:/bin"],
            scratchDirectory: directory, timeout: timeout)
    }

    /// `quorumctl --socket … status --json`, decoded; nil when the node did not answer
    /// (exit status other than 0 or 2, or output that is not a status).
    func status(_ name: String) async -> StatusReport? {
        guard let run = try? await quorumctl(name, ["status", "--json"]),
            run.status == .exited(0) || run.status == .exited(2)
        else { return nil }
        return try? JSONDecoder().decode(StatusReport.self, from: Data(run.standardOutput.utf8))
    }

    /// `quorumctl --socket … peers --json`, decoded; nil when the node did not answer.
    func peers(_ name: String) async -> [PeerReport]? {
        guard let run = try? await quorumctl(name, ["peers", "--json"]), run.status == .exited(0) else { return nil }
        return try? JSONDecoder().decode([PeerReport].self, from: Data(run.standardOutput.utf8))
    }

    /// The state of each peer `name` lists, by peer name; nil when it did not answer or lists a
    /// name twice.
    func peerStates(_ name: String) async -> [String: PeerReport.State]? {
        guard let peers = await peers(name) else { return nil }
        var states: [String: PeerReport.State] = [:]
        for peer in peers {
            if states[peer.name] != nil { return nil }
            states[peer.name] = peer.state
        }
        return states
    }

    // MARK: Waiting

    /// Polls `condition` every ~20 ms until it holds; throws, describing every node, if it does
    /// not within `timeout`.
    func waitUntil(
        _ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool
    ) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            try Task.checkCancellation()
            if try await condition() { return }
            if clock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw IntegrationError("timed out after \(timeout) waiting until \(what)\n\(await snapshot())")
    }

    /// Checks that `condition` keeps holding, polling for `duration` (an observation window, not
    /// a synchronisation sleep); throws at the first poll where it does not.
    func holds(_ what: String, for duration: Duration, _ condition: () async throws -> Bool) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: duration)
        repeat {
            try Task.checkCancellation()
            if !(try await condition()) {
                throw IntegrationError("no longer true: \(what)\n\(await snapshot())")
            }
            try await Task.sleep(for: .milliseconds(50))
        } while clock.now < deadline
    }

    /// True when every node in `members` answers, is quorate, names `master` as master (with
    /// role `master` on the master and `slave` elsewhere) and, if given, sees `clusterSize`
    /// nodes and `lost` lost ones.
    func agree(master: String, members: [String], clusterSize: Int? = nil, lost: Int? = nil) async -> Bool {
        for name in members {
            guard let s = await status(name) else { return false }
            guard s.quorate, s.master == master, s.role == (name == master ? "master" : "slave") else { return false }
            if let clusterSize, s.clusterSize != clusterSize { return false }
            if let lost, s.lost != lost { return false }
        }
        return true
    }

    /// Starts `names` one after another, each once the previous ones agree (the first node
    /// alone becomes master), as the original's tests did; returns when all agree on the first.
    func startInOrder(_ names: [String], _ extraArgs: [String] = [], timeout: Duration = .seconds(10)) async throws {
        for (i, name) in names.enumerated() {
            try start(name, extraArgs)
            let members = Array(names[...i])
            try await waitUntil("\(members) agree \(names[0]) is master", timeout: timeout) {
                await agree(master: names[0], members: members, clusterSize: members.count, lost: 0)
            }
        }
    }

    /// Every node's process state, status and peers, for failure messages.
    func snapshot() async -> String {
        var lines: [String] = ["cluster \(directory), discovery \(Self.broadcastAddress):\(broadcastPort)"]
        for name in names {
            guard let node = try? node(name) else { continue }
            let state = exitStatus(name).map { "ended: \($0)" } ?? (node.pid.map { "running, pid \($0)" } ?? "not started")
            lines.append("- \(name) (port \(node.port)): \(state)")
            if isRunning(name) {
                if let run = try? await quorumctl(name, ["status", "--json"], timeout: .seconds(3)) {
                    lines.append("    status → \(run.status): \(run.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) \(run.standardError.trimmingCharacters(in: .whitespacesAndNewlines))")
                }
                if let run = try? await quorumctl(name, ["peers", "--json"], timeout: .seconds(3)) {
                    lines.append("    peers  → \(run.status): \(run.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))")
                }
            }
        }
        let hooks = hookRuns()
        lines.append("hook runs (\(hooks.count)):")
        lines += hooks.map { "    \($0)" }
        return lines.joined(separator: "\n")
    }

    // MARK: Teardown

    /// The tail of node `name`'s log.
    func log(_ name: String, maxBytes: Int = 48 * 1024) -> String {
        guard let node = try? node(name), let data = FileManager.default.contents(atPath: node.logPath) else { return "" }
        let tail = data.count > maxBytes ? data.suffix(maxBytes) : data
        return (data.count > maxBytes ? "[… \(data.count - maxBytes) bytes cut …]\n" : "") + String(decoding: tail, as: UTF8.self)
    }

    /// SIGKILLs every node still running (its whole process group), reaps it, prints the logs if
    /// the test failed (or `QUORUM_TEST_LOGS=1`), and removes the directory. Idempotent.
    func teardown() {
        let all: [Node]? = state.withLock { s in
            if s.torndown { return nil }
            s.torndown = true
            return s.order.compactMap { s.nodes[$0] }
        }
        guard let all else { return }
        for node in all {
            guard let pid = node.pid, node.exitStatus == nil else { continue }
            Glibc.kill(-pid, SIGKILL)
            Glibc.kill(pid, SIGKILL)
            let status = waitForChild(pid, timeout: .seconds(5))
            state.withLock { $0.nodes[node.name]?.exitStatus = status }
        }
        if failed || ProcessInfo.processInfo.environment["QUORUM_TEST_LOGS"] == "1" {
            var report = "\n========== quorum integration test logs (\(directory)) ==========\n"
            for node in all {
                let status = state.withLock { $0.nodes[node.name]?.exitStatus }.map { "\($0)" } ?? "?"
                report += "----- node \(node.name) (port \(node.port), \(node.starts) start(s), last: \(status)) -----\n"
                report += "args: \(node.arguments.joined(separator: " "))\n"
                report += log(node.name)
                report += "\n"
            }
            report += "----- hook runs -----\n" + hookRuns().map(\.description).joined(separator: "\n") + "\n"
            FileHandle.standardError.write(Data(report.utf8))
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Runs `body` with a fresh ``LocalCluster``; always tears it down (SIGKILL, remove the temp
/// directory), printing the node logs when `body` throws (a failed `#require`, a timed-out wait).
func withCluster<T>(
    hookSeconds: Double = 0, _ body: (LocalCluster) async throws -> T
) async throws -> T {
    let cluster = try LocalCluster(hookSeconds: hookSeconds)
    defer { cluster.teardown() }
    do {
        return try await body(cluster)
    } catch {
        cluster.failed = true
        throw error
    }
}
