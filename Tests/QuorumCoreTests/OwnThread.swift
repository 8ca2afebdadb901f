import Foundation

/// Runs CPU-bound work (seconds of simulation) on a thread of its own and awaits its result.
///
/// Swift Testing runs every test, synchronous ones too, on Swift's cooperative pool, which has
/// one thread per core. A simulation that keeps a pool thread busy for seconds starves the
/// other suites of the same test process: on a two-core machine the control-server tests'
/// handlers waited behind it until their clients' 5 s deadlines passed. A thread of its own is
/// time-sliced by the kernel instead. Expectations stay in the test's task: the body returns
/// what they need.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}
