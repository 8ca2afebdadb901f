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

    typealias Launch = ProcessGroupRun.Launch

    static func launch(for path: String) -> Launch { Launch.of(path) }

    static func absolute(_ path: String) -> String { ProcessGroupRun.absolute(path) }

    private func execute(_ hook: HookInvocation) async -> HookOutcome {
        var hookLogger = self.logger
        for (key, value) in metadata(for: hook) { hookLogger[metadataKey: key] = value }
        let logger = hookLogger
        let launch = Self.launch(for: Self.absolute(hook.path))
        guard let (executable, arguments) = launch.start else {
            let why = launch == .missing ? "file not found" : "file is not executable (and not a .py file)"
            logger.error("hook not run: \(why)", metadata: ["MESSAGE_ID": "\(MessageID.hookFailed.rawValue)"])
            return launch == .missing ? .missing : .notExecutable
        }
        logger.debug("hook started")
        let timeout = self.timeout
        let outcome = await ProcessGroupRun.run(
            executable, arguments: arguments, environment: hook.environment, timeout: timeout,
            onDeadline: { logger.error("hook still running after \(timeout); killing its process group") }
        ) { out, err in
            async let o: Void = Self.log(out, stream: "stdout", to: logger)
            async let e: Void = Self.log(err, stream: "stderr", to: logger)
            _ = await (o, e)
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
