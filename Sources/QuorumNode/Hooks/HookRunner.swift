import Logging
import ServiceLifecycle
import Subprocess
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs role hooks one at a time, in the order they were submitted, never two at once.
///
/// `submit(_:)` is synchronous and never blocks: the run is queued and ``run()`` (the one
/// serial task, started by the node's `ServiceGroup` or by a test) works through the queue.
/// For every submitted run exactly one ``HookCompletion`` is reported through `onCompletion`,
/// in submission order, after the hook has ended (or was killed, or could not start).
///
/// Each hook:
/// - is started directly, without a shell: the file itself when it is executable, else
///   `python3 FILE` when the name ends in `.py` (the original's hooks have no `#!` and no
///   execute bit);
/// - gets the inherited environment plus ``HookInvocation/environment``;
/// - runs in a process group of its own; after `timeout` the whole group gets SIGKILL and
///   the hook is reaped;
/// - has its standard output and error logged line by line (metadata `quorum.hook`,
///   `quorum.role`, `quorum.hook.stream`).
/// A missing, failing or hanging hook is logged; nothing is thrown.
///
/// Process spawning uses swift-subprocess: its `PlatformOptions.processGroupID = 0` makes
/// the child lead a new process group (POSIX_SPAWN_SETPGROUP), and its `teardownSequence`
/// kills that group if the runner's task is cancelled. The timeout itself is enforced here,
/// around the whole run, with `kill(-pgid, SIGKILL)`, so it also covers a hook that closed
/// its output but kept running.
///
/// Non-guarantee: a run ends when the hook process itself exits. Children it left running in
/// the background (a hook may start a service on purpose) are not killed, and what they
/// print after that is not logged (swift-subprocess stops reading when the process exits).
///
/// Shutdown: on graceful shutdown (or ``finish()``) the queue is closed, runs already queued
/// still run, then ``run()`` returns. On cancellation the current hook's group is killed and
/// the rest of the queue is reported as ``HookOutcome/notRun``.
public final class HookRunner: Service, Sendable {
    public static let defaultTimeout = NodeSettings.Defaults.hookTimeout

    private let timeoutSetting: Mutex<Duration>
    private let logger: Logger
    private let onCompletion: @Sendable (HookCompletion) -> Void
    private let queue: AsyncStream<HookInvocation>
    private let continuation: AsyncStream<HookInvocation>.Continuation
    private let state = Mutex(State())

    private struct State {
        /// Submitted runs not yet reported complete.
        var outstanding = 0
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// - Parameters:
    ///   - timeout: how long a hook may run before its process group is killed.
    ///   - logger: where hook output and failures go.
    ///   - onCompletion: called from the runner's task, in order, once per submitted run.
    public init(
        timeout: Duration = HookRunner.defaultTimeout,
        logger: Logger,
        onCompletion: @escaping @Sendable (HookCompletion) -> Void = { _ in }
    ) {
        precondition(timeout > .zero, "hook timeout must be positive")
        self.timeoutSetting = Mutex(timeout)
        self.logger = logger
        self.onCompletion = onCompletion
        (queue, continuation) = AsyncStream.makeStream(of: HookInvocation.self, bufferingPolicy: .unbounded)
    }

    /// How long a hook may run before its process group is killed. Set by a reload: a run
    /// that has started keeps the timeout it started with.
    public var timeout: Duration {
        get { timeoutSetting.withLock { $0 } }
        set {
            precondition(newValue > .zero, "hook timeout must be positive")
            timeoutSetting.withLock { $0 = newValue }
        }
    }

    /// Queues a hook run. Never blocks, never throws. After ``finish()`` the run is not
    /// started but still reported (as ``HookOutcome/notRun``).
    public func submit(_ hook: HookInvocation) {
        state.withLock { $0.outstanding += 1 }
        if case .terminated = continuation.yield(hook) {
            logger.warning("hook not run: the hook runner has stopped", metadata: metadata(for: hook))
            complete(HookCompletion(id: hook.id, outcome: .notRun))
        }
    }

    /// Returns once every run submitted so far has been reported complete.
    /// (Needs ``run()`` to be running, or to have been cancelled.)
    public func drain() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                if state.outstanding == 0 { return true }
                state.drainWaiters.append(waiter)
                return false
            }
            if resumeNow { waiter.resume() }
        }
    }

    /// Closes the queue: runs already submitted still run, then ``run()`` returns.
    public func finish() {
        continuation.finish()
    }

    /// The serial task. Returns after ``finish()`` or graceful shutdown once the queue is
    /// empty, or on cancellation.
    public func run() async {
        await withGracefulShutdownHandler {
            for await hook in queue {
                if Task.isCancelled {
                    complete(HookCompletion(id: hook.id, outcome: .notRun))
                    continue
                }
                let outcome = await execute(hook)
                complete(HookCompletion(id: hook.id, outcome: outcome))
            }
        } onGracefulShutdown: {
            self.continuation.finish()
        }
        // Cancelled while the queue was open: report what is left so drain() returns.
        continuation.finish()
        for await hook in queue {
            complete(HookCompletion(id: hook.id, outcome: .notRun))
        }
    }

    private func complete(_ completion: HookCompletion) {
        onCompletion(completion)
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.outstanding -= 1
            guard state.outstanding == 0 else { return [] }
            defer { state.drainWaiters = [] }
            return state.drainWaiters
        }
        waiters.forEach { $0.resume() }
    }

    private func metadata(for hook: HookInvocation) -> Logger.Metadata {
        ["quorum.hook": "\(hook.path)", "quorum.role": "\(hook.role)", "quorum.hook.id": "\(hook.id)"]
    }

    // MARK: - One run

    /// How to start a hook file, decided from the file system.
    enum Launch: Equatable {
        case direct(path: String)
        case python(path: String)
        case missing
        case notExecutable
    }

    static func launch(for path: String) -> Launch {
        var info = stat()
        guard stat(path, &info) == 0 else { return .missing }
        let isRegular = (info.st_mode & S_IFMT) == S_IFREG
        if isRegular && access(path, X_OK) == 0 { return .direct(path: path) }
        if isRegular && path.hasSuffix(".py") { return .python(path: path) }
        return .notExecutable
    }

    static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        guard let cwd = getcwd(nil, 0) else { return path }
        defer { free(cwd) }
        return String(cString: cwd) + "/" + path
    }

    private enum RunEvent: Sendable {
        case ended(HookOutcome)
        case timerFired
    }

    private func execute(_ hook: HookInvocation) async -> HookOutcome {
        var hookLogger = self.logger
        for (key, value) in metadata(for: hook) { hookLogger[metadataKey: key] = value }
        let logger = hookLogger
        let path = Self.absolute(hook.path)

        let executable: Executable
        let arguments: [String]
        switch Self.launch(for: path) {
        case .direct(let file):
            executable = .path(.init(stringLiteral: file))
            arguments = []
        case .python(let file):
            executable = .name("python3")
            arguments = [file]
        case .missing:
            logger.error("hook not run: file not found", metadata: ["MESSAGE_ID": "\(MessageID.hookFailed.rawValue)"])
            return .missing
        case .notExecutable:
            logger.error("hook not run: file is not executable (and not a .py file)", metadata: ["MESSAGE_ID": "\(MessageID.hookFailed.rawValue)"])
            return .notExecutable
        }

        var environmentUpdate: [Environment.Key: String?] = [:]
        for (key, value) in hook.environment { environmentUpdate[Environment.Key(rawValue: key)!] = value }
        var platformOptions = PlatformOptions()
        platformOptions.processGroupID = 0  // a new group, led by the hook (pgid == pid)
        platformOptions.teardownSequence = [
            .send(signal: .kill, toProcessGroup: true, allowedDurationToNextStep: .zero)
        ]
        let options = platformOptions
        let environment = Environment.inherit.updating(environmentUpdate)

        logger.debug("hook started")
        let groupID = ProcessGroupBox()
        let timeout = self.timeout
        let outcome = await withTaskGroup(of: RunEvent.self) { group -> HookOutcome in
            group.addTask {
                do {
                    let result = try await Subprocess.run(
                        executable,
                        arguments: Arguments(arguments),
                        environment: environment,
                        platformOptions: options,
                        input: .none,
                        output: .sequence,
                        error: .sequence
                    ) { execution in
                        groupID.set(execution.processIdentifier.value)
                        async let out: Void = Self.log(execution.standardOutput, stream: "stdout", to: logger)
                        async let err: Void = Self.log(execution.standardError, stream: "stderr", to: logger)
                        _ = await (out, err)
                    }
                    switch result.terminationStatus {
                    case .exited(let code): return .ended(.exited(code))
                    case .signaled(let signal): return .ended(.signaled(signal))
                    }
                } catch {
                    return .ended(.failedToStart("\(error)"))
                }
            }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                    return .timerFired
                } catch {
                    return .ended(.notRun)  // cancelled: the hook ended first
                }
            }

            var timedOut = false
            while let event = await group.next() {
                switch event {
                case .timerFired:
                    timedOut = true
                    if let pgid = groupID.value {
                        logger.error("hook still running after \(timeout); killing its process group")
                        kill(-pgid, SIGKILL)
                    }
                case .ended(let outcome):
                    group.cancelAll()
                    return timedOut ? .timedOut : outcome
                }
            }
            return timedOut ? .timedOut : .notRun
        }

        let failed: Logger.Metadata = ["MESSAGE_ID": "\(MessageID.hookFailed.rawValue)"]
        switch outcome {
        case .exited(0): logger.debug("hook finished", metadata: ["MESSAGE_ID": "\(MessageID.hookSucceeded.rawValue)"])
        case .exited(let code): logger.error("hook failed with exit status \(code)", metadata: failed)
        case .signaled(let signal): logger.error("hook killed by signal \(signal)", metadata: failed)
        case .timedOut: logger.error("hook killed after \(timeout) (timeout)", metadata: failed)
        case .failedToStart(let reason): logger.error("hook could not be started: \(reason)", metadata: failed)
        case .missing, .notExecutable, .notRun: break
        }
        return outcome
    }

    /// Logs each line of a hook's output; lines longer than `maximumLine` bytes are cut.
    private static func log(_ output: SubprocessOutputSequence, stream: String, to logger: Logger) async {
        let maximumLine = 16 * 1024
        var pending: [UInt8] = []
        func emit(_ bytes: ArraySlice<UInt8>) {
            var line = bytes
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            logger.info("\(String(decoding: line, as: UTF8.self))", metadata: ["quorum.hook.stream": "\(stream)"])
        }
        do {
            for try await buffer in output {
                buffer.withUnsafeBytes { raw in pending.append(contentsOf: raw) }
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    emit(pending[..<newline].prefix(maximumLine))
                    pending.removeSubrange(...newline)
                }
                if pending.count > maximumLine {
                    emit(pending[..<maximumLine])
                    pending.removeAll(keepingCapacity: true)
                }
            }
        } catch {
            logger.warning("reading hook \(stream) failed: \(error)")
        }
        if !pending.isEmpty { emit(pending[...]) }
    }
}

/// The hook's process group id, published by the task that started it to the task that
/// may have to kill it.
private final class ProcessGroupBox: Sendable {
    private let storage = Mutex<pid_t?>(nil)
    func set(_ pgid: pid_t) { storage.withLock { $0 = pgid } }
    var value: pid_t? { storage.withLock { $0 } }
}
