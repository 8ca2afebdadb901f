import Dispatch
import Foundation
import Synchronization
import Testing

/// Runs each test of a suite on a thread of its own.
///
/// Swift Testing runs every test, synchronous ones too, on Swift's cooperative pool, which has
/// one thread per core. The core's tests compute (seconds of simulation each), and on a
/// two-core machine they held the whole pool, so the control-server tests of the same process
/// could not run their handlers until their clients' 5 s deadlines had passed. A test under
/// this trait prefers an executor with a dedicated thread, which the kernel time-slices with
/// the pool instead of taking it over. Expectations work as anywhere: the test is still the
/// same task.
struct OnOwnThread: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        test.isSuite || testCase == nil ? nil : self
    }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let executor = ThreadExecutor()
        defer { executor.stop() }
        try await withTaskExecutorPreference(executor) { try await function() }
    }
}

extension Trait where Self == OnOwnThread {
    /// Each test runs on a thread of its own, not on the cooperative pool.
    static var onOwnThread: Self { Self() }
}

/// A task executor that runs its jobs, in order, on one thread it owns until `stop()`.
final class ThreadExecutor: TaskExecutor, Sendable {
    private struct State {
        var jobs: [UnownedJob] = []
        var stopping = false
    }
    private let state = Mutex(State())
    /// Signalled once per job queued and once by `stop()`.
    private let ready = DispatchSemaphore(value: 0)

    init() {
        let thread = Thread { [self] in run() }
        thread.stackSize = 8 << 20
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        state.withLock { $0.jobs.append(job) }
        ready.signal()
    }

    /// Ends the thread once the jobs already queued have run.
    func stop() {
        state.withLock { $0.stopping = true }
        ready.signal()
    }

    private func run() {
        while true {
            ready.wait()
            let (batch, finished) = state.withLock { s -> ([UnownedJob], Bool) in
                let batch = s.jobs
                s.jobs.removeAll()
                return (batch, batch.isEmpty && s.stopping)
            }
            if finished { return }
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
