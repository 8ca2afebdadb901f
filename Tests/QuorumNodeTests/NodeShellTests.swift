@testable import QuorumCore
import QuorumTestSupport
import Testing
@testable import QuorumNode

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite("The node's clock")
struct BootClockTests {
    @Test("the core's instants come from CLOCK_BOOTTIME, which is never behind CLOCK_MONOTONIC")
    func bootTime() {
        let monotonicBefore = BootClock.nanoseconds(CLOCK_MONOTONIC)
        let bootBefore = BootClock.nanoseconds(CLOCK_BOOTTIME)
        let now = BootClock.now()
        let bootAfter = BootClock.nanoseconds(CLOCK_BOOTTIME)
        let monotonicAfter = BootClock.nanoseconds(CLOCK_MONOTONIC)
        // Read between two readings of CLOCK_BOOTTIME: it is that clock.
        #expect(bootBefore <= now.nanoseconds && now.nanoseconds <= bootAfter)
        // BOOTTIME is MONOTONIC plus the time the host spent suspended: never less, and the
        // two advance together while the host runs (their offset only grows across a suspend).
        #expect(now.nanoseconds >= monotonicBefore)
        let offsetBefore = bootBefore - monotonicBefore
        let offsetAfter = bootAfter - monotonicAfter
        #expect(offsetBefore >= 0)
        #expect(abs(offsetAfter - offsetBefore) < 50_000_000, "no suspend within the test: the offset stays put")
    }
}

@Suite("Hook dispatch: the driver's side of the core's HookQueue")
struct HookDispatchTests {
    static func run(_ id: UInt64, _ role: Role, epoch: UInt64, previous: Role = .slave) -> HookRun {
        HookRun(id: id, role: role, previousRole: previous, epoch: epoch, master: role == .master ? "n" : "m", cause: .elected)
    }

    func dispatch(master: String? = "/hooks/master", slave: String? = "/hooks/slave") -> HookDispatch {
        HookDispatch(masterHook: master, slaveHook: slave, name: "n", cluster: "c")
    }

    @Test("a master hook queued behind a slow slave hook is asked about only when that hook ends, and skipped once the lease has ended")
    func masterHookAskedWhenItsTurnComes() {
        var d = dispatch()
        d.enqueue(Self.run(1, .slave, epoch: 1, previous: .discovering))
        var asked: [UInt64] = []
        let first = d.next { asked.append($0.id); return true }
        guard case .start(let slave)? = first.first else {
            Issue.record("the slave hook starts: \(first)")
            return
        }
        #expect(slave.path == "/hooks/slave" && slave.role == "slave" && slave.id == 1)
        // The node becomes master while the slave hook runs: queued, nothing asked yet.
        d.enqueue(Self.run(2, .master, epoch: 2))
        #expect(d.next { _ in Issue.record("asked while a hook runs"); return true } == [])
        #expect(d.isRunning)
        // The slave hook ends; by now the lease has ended: the master hook is skipped.
        d.finish(1)
        let steps = d.next { asked.append($0.id); return false }
        #expect(asked == [1, 2], "mayStart is asked when each hook's turn comes")
        guard case .skipped(let skipped, let reason)? = steps.first, steps.count == 1 else {
            Issue.record("the master hook is skipped: \(steps)")
            return
        }
        #expect(skipped.id == 2 && skipped.isMasterHook)
        #expect(reason.contains("lease"))
        #expect(d.isIdle)
    }

    @Test("the latest role's hook runs: a master hook whose lease still runs starts after the slow slave hook")
    func latestRolesHookRuns() {
        var d = dispatch()
        d.enqueue(Self.run(1, .slave, epoch: 1, previous: .discovering))
        _ = d.next { _ in true }
        d.enqueue(Self.run(2, .master, epoch: 2))
        d.finish(1)
        let steps = d.next { $0.epoch == 2 }
        guard case .start(let master)? = steps.first, steps.count == 1 else {
            Issue.record("the master hook starts: \(steps)")
            return
        }
        #expect(master.path == "/hooks/master")
        #expect(master.environment["QUORUM_ROLE"] == "master")
        #expect(master.environment["QUORUM_PREVIOUS_ROLE"] == "slave")
        #expect(master.environment["QUORUM_EPOCH"] == "2")
        #expect(master.environment["QUORUM_NAME"] == "n" && master.environment["QUORUM_CLUSTER"] == "c")
    }

    @Test("a hook with a newer one queued behind it is skipped; only the newest starts")
    func staleHookSkipped() {
        var d = dispatch()
        d.enqueue(Self.run(1, .slave, epoch: 1, previous: .discovering))
        _ = d.next { _ in true }
        d.enqueue(Self.run(2, .master, epoch: 2))
        d.enqueue(Self.run(3, .noQuorum, epoch: 2, previous: .master))
        d.finish(1)
        let steps = d.next { _ in true }
        #expect(steps.count == 2)
        if case .skipped(let run, let reason)? = steps.first {
            #expect(run.id == 2 && reason.contains("newer"))
        } else {
            Issue.record("the master hook is skipped first: \(steps)")
        }
        if case .start(let run)? = steps.last {
            #expect(run.id == 3 && run.role == "no-quorum" && run.previousRole == "master")
        } else {
            Issue.record("then the no-quorum slave hook starts: \(steps)")
        }
    }

    @Test("no hook file for the role, or no runner: the run finishes at once and the next may start")
    func noHookFile() {
        var d = dispatch(master: nil)
        d.enqueue(Self.run(1, .master, epoch: 1, previous: .discovering))
        let steps = d.next { _ in true }
        #expect(steps.count == 1)
        if case .finished(let run)? = steps.first { #expect(run.id == 1) } else { Issue.record("finished at once: \(steps)") }
        #expect(d.isIdle)

        var e = dispatch()
        e.enqueue(Self.run(4, .slave, epoch: 1, previous: .discovering))
        let none = e.next(runner: false) { _ in true }
        if case .finished(let run)? = none.first { #expect(run.id == 4) } else { Issue.record("finished at once: \(none)") }
        #expect(e.isIdle)
    }
}
