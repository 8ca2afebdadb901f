import Logging
import ServiceLifecycle
import Subprocess
import Synchronization

/// Runs the health check (`--check`) on this node, one run at a time: the next run starts
/// `--check-interval` after the previous one ended (no overlap); a run that outlives
/// `--check-timeout` gets SIGTERM with its process group, then SIGKILL a second later, and
/// counts as a failure. Exit 0 passes; any other exit, a signal, a timeout or a program that
/// cannot start fails. The node (``NodeDriver``) turns the results into a verdict and tells
/// the core; the settings are read before every run, so a reload applies to the next one.
///
/// Each run gets the node's state in its environment (`QUORUM_ROLE`, `QUORUM_NAME`,
/// `QUORUM_CLUSTER`, `QUORUM_MASTER`, `QUORUM_EPOCH`, `QUORUM_CHECK_FAILURES`) and no input.
/// The first line of its output (at most 200 bytes) is kept for `status`; up to 4 KiB of it is
/// logged at debug level.
public final class HealthCheckRunner: Service, Sendable {
    private let driver: NodeDriver
    private let logger: Logger
    static let outputCap = 4096
    static let shownOutput = 200
    /// SIGTERM, then this long before SIGKILL.
    static let grace: Duration = .seconds(1)

    public init(driver: NodeDriver, logger: Logger) {
        self.driver = driver
        self.logger = logger
    }

    public func run() async {
        await cancelWhenGracefulShutdown {
            var reloads = self.driver.settingsChanged.makeAsyncIterator()
            while !Task.isCancelled {
                guard let check = await self.driver.checkSettings() else {
                    // No check: nothing to do until a reload adds one.
                    guard await reloads.next() != nil else { return }
                    continue
                }
                await self.runOnce(check)
                await self.pause(check)
            }
        }
    }

    /// Waits out the interval, in steps of at most a second: a reload that changes the check
    /// (a shorter interval, another command) takes effect within a second, not after an hour.
    private func pause(_ check: HealthCheckSettings) async {
        let clock = ContinuousClock()
        let end = clock.now + check.interval
        while clock.now < end, !Task.isCancelled {
            try? await Task.sleep(for: min(end - clock.now, .seconds(1)))
            if clock.now < end, await driver.checkSettings() != check { return }
        }
    }

    /// One run of the check, its result handed to the node.
    func runOnce(_ check: HealthCheckSettings) async {
        let environment = await driver.checkEnvironment()
        let startedAt = BootClock.wallClockMilliseconds()
        let clock = ContinuousClock()
        let began = clock.now
        let collected = OutputBox()
        let program = check.command[0]
        let outcome: HookOutcome
        // A bare name is looked up in PATH; a path (with a '/') must be a file that can start.
        if program.contains("/") {
            let launch = ProcessGroupRun.Launch.of(ProcessGroupRun.absolute(program))
            if let (executable, prefix) = launch.start {
                outcome = await run(executable, prefix + check.command.dropFirst(), check, environment, collected)
            } else {
                outcome = .failedToStart(launch == .missing ? "No such file or directory" : "not executable")
            }
        } else {
            outcome = await run(.name(program), Array(check.command.dropFirst()), check, environment, collected)
        }
        let output = collected.text
        let firstLine = output.split(whereSeparator: \.isNewline).first.map { line in
            var cut = Substring(line)
            while cut.utf8.count > Self.shownOutput { cut = cut.dropLast() }
            return String(cut)
        }
        await driver.checkFinished(
            passed: outcome == .exited(0), result: Self.describe(outcome), output: firstLine, fullOutput: output,
            startedAt: startedAt, took: clock.now - began)
    }

    private func run(_ executable: Executable, _ arguments: [String], _ check: HealthCheckSettings, _ environment: [String: String],
                     _ collected: OutputBox) async -> HookOutcome {
        await ProcessGroupRun.run(executable, arguments: arguments, environment: environment, timeout: check.timeout, grace: Self.grace) { out, err in
            async let o: Void = collected.read(out)
            async let e: Void = collected.read(err)
            _ = await (o, e)
        }
    }

    /// `exit 1`, `timeout`, `signal 11`, `exec: …`.
    static func describe(_ outcome: HookOutcome) -> String {
        switch outcome {
        case .exited(let code): "exit \(code)"
        case .signaled(let signal): "signal \(signal)"
        case .timedOut: "timeout"
        case .failedToStart(let why): "exec: \(why)"
        case .missing: "exec: No such file or directory"
        case .notExecutable: "exec: not executable"
        case .notRun: "not run"
        }
    }
}

/// What a check printed, both streams, up to ``HealthCheckRunner/outputCap`` bytes; the rest
/// is read and dropped so the check never blocks on a full pipe.
private final class OutputBox: Sendable {
    private let bytes = Mutex<[UInt8]>([])

    func read(_ stream: SubprocessOutputSequence) async {
        do {
            for try await buffer in stream {
                buffer.withUnsafeBytes { raw in
                    bytes.withLock { b in
                        let room = HealthCheckRunner.outputCap - b.count
                        if room > 0 { b.append(contentsOf: raw.prefix(room)) }
                    }
                }
            }
        } catch {}
    }

    var text: String { String(decoding: bytes.withLock { $0 }, as: UTF8.self) }
}
