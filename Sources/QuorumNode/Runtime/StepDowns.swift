import NIOCore
import QuorumControl
import QuorumCore

/// Step-downs asked of this node (`quorumctl step-down`), from the request to the report:
/// the core answers (itself, or the master it forwarded to), then the new master is awaited
/// until the request's timeout. Confined to the node's event loop, like ``CoreAdapter``.
final class StepDowns {
    private struct Pending {
        var promise: EventLoopPromise<StepDownReport>
        var askedAt: Instant
        var deadline: Instant
        /// The master's acceptance, once it came: the new master is awaited.
        var accepted: (from: String, to: String, epoch: UInt64)?
        var timer: Scheduled<Void>?
    }

    private let loop: EventLoop
    private var pending: [UInt64: Pending] = [:]
    private var nextID = UInt64.random(in: 1...(UInt64.max / 2))
    /// At most this many step-downs wait at once; more are refused as busy.
    static let limit = 8

    init(loop: EventLoop) { self.loop = loop }

    /// A new request: its id for the core, and the report to come. `expire` is called at its
    /// deadline (the adapter then reports what it sees).
    func begin(to target: String?, timeout: Duration, now: Instant, expire: @escaping (UInt64) -> Void) -> (StepDownRequest, EventLoopFuture<StepDownReport>)? {
        guard pending.count < Self.limit else { return nil }
        let id = nextID
        nextID &+= 1
        let request = StepDownRequest(id: id, target: target, timeout: timeout)
        let promise = loop.makePromise(of: StepDownReport.self)
        // The answer must come well within the timeout; a master that is gone meanwhile never answers.
        let deadline = now + request.timeout
        let timer = loop.assumeIsolated().scheduleTask(in: .nanoseconds(request.timeout.nanosecondsClamped)) { expire(id) }
        pending[id] = Pending(promise: promise, askedAt: now, deadline: deadline, timer: timer)
        return (request, promise.futureResult)
    }

    /// The core's (or the master's) answer.
    func answered(_ id: UInt64, _ answer: StepDownAnswer) {
        guard var p = pending[id], p.accepted == nil else { return }
        switch answer {
        case .refused(let refusal):
            complete(id, StepDownReport(outcome: .refused, error: refusal.message, reason: refusal.reason.code))
        case .accepted(let from, let to, let epoch):
            p.accepted = (from, to, epoch)
            pending[id] = p
        }
    }

    /// The master as this node sees it now: completes every accepted step-down a newer master
    /// than the old one's epoch has ended. `warning` names a preemption to come, if any.
    func observe(master: MasterClaim?, now: Instant, warning: () -> String?) {
        guard let m = master else { return }
        for (id, p) in pending {
            guard let a = p.accepted, m.epoch > a.epoch else { continue }
            if m.name == a.from {
                complete(id, StepDownReport(outcome: .notConfirmed, from: a.from, to: m.name, previousEpoch: a.epoch, epoch: m.epoch,
                                            error: "no handover: \(m.name) is master again (epoch \(m.epoch))", reason: "not-confirmed"))
            } else {
                complete(id, StepDownReport(outcome: .done, from: a.from, to: m.name, previousEpoch: a.epoch, epoch: m.epoch,
                                            durationSeconds: Double((now - p.askedAt).nanosecondsClamped) / 1e9, warning: warning()))
            }
        }
    }

    /// The request's time is up: report what is known.
    func expire(_ id: UInt64, master: MasterClaim?) {
        guard let p = pending[id] else { return }
        let seconds = (p.deadline - p.askedAt).secondsText
        guard let a = p.accepted else {
            complete(id, StepDownReport(outcome: .notConfirmed, error: "the master did not answer within \(seconds)s", reason: "not-confirmed"))
            return
        }
        let now = master.map { " \($0.name) is master (epoch \($0.epoch))" } ?? " there is no master"
        complete(id, StepDownReport(outcome: .notConfirmed, from: a.from, previousEpoch: a.epoch, epoch: master?.epoch,
                                    error: "no handover within \(seconds)s;" + now, reason: "not-confirmed"))
    }

    /// The node ends: every waiting request learns it.
    func cancelAll() {
        for id in Array(pending.keys) {
            complete(id, StepDownReport(outcome: .notConfirmed, error: "the node is stopping", reason: "not-confirmed"))
        }
    }

    private func complete(_ id: UInt64, _ report: StepDownReport) {
        guard let p = pending.removeValue(forKey: id) else { return }
        p.timer?.cancel()
        p.promise.succeed(report)
    }
}
