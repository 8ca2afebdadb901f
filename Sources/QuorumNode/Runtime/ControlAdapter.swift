import NIOCore
import QuorumControl
import QuorumCore

/// Answers the control socket from snapshots of the node's state: each request becomes one
/// question to the node (asked on its event loop), and the answer one ``ControlResponse``.
/// A new control command gets its `case` here (and in `ControlRequest`, and in `quorumctl`).
public struct ControlAdapter: Sendable {
    let driver: NodeDriver
    let reloader: Reloader?

    public init(driver: NodeDriver, reloader: Reloader? = nil) {
        self.driver = driver
        self.reloader = reloader
    }

    /// The control server's handler.
    public var handler: @Sendable (ControlRequest) async -> ControlResponse {
        let adapter = self
        return { request in await adapter.answer(request) }
    }

    public func answer(_ request: ControlRequest) async -> ControlResponse {
        let response = await respond(request)
        driver.metrics.controlRequest(request.command, ok: response.isOK)
        return response
    }

    func respond(_ request: ControlRequest) async -> ControlResponse {
        do {
            switch request {
            case .status:
                guard let snapshot = try await driver.statusSnapshot().get() else { return .failure("the node is starting") }
                var report = Self.report(snapshot.status, uptime: snapshot.uptime)
                report.seeds = snapshot.seeds
                report.broadcastDiscovery = snapshot.broadcastDiscovery
                report.warnings = snapshot.warnings
                report.standby = snapshot.standby
                report.check = snapshot.check
                return .status(report)
            case .peers:
                return .peers(try await driver.peerSnapshot().get().map(Self.report))
            case .leave:
                let code = try await driver.leave().get()
                return .accepted("\(driver.settings.name) has told its peers and stopped (exit status \(code))")
            case .forget(let peer):
                return Self.response(forgetting: peer, try await driver.forget(peer).get())
            case .reload:
                guard let reloader else { return .failure("this node cannot reload") }
                return .reload(await reloader.reload(trigger: "quorumctl reload"))
            case .stepDown(let target, let milliseconds):
                return .stepDown(try await driver.stepDown(to: target, timeout: .milliseconds(milliseconds)).get())
            case .standby(let on, let untilRestart):
                switch try await driver.standby(on: on, untilRestart: untilRestart).get() {
                case .success(let line): return .accepted(line)
                case .failure(let error): return .failure("standby not changed: \(error.description)")
                }
            case .watch:
                // The control server streams a watch itself (ControlServer.Watch).
                return .failure("watch is a stream, not a single answer")
            }
        } catch {
            return .failure("the node could not answer: \(error)")
        }
    }

    static func response(forgetting peer: String, _ outcome: ForgetOutcome) -> ControlResponse {
        switch outcome {
        case .forgotten: .accepted("\(peer) forgotten; it no longer counts toward the cluster size")
        case .unknown: .failure("no node named \(peer) is known")
        case .stillConnected: .failure("\(peer) is connected; only lost or dispatched nodes can be forgotten")
        }
    }

    static func report(_ s: QuorumInstance.Status, uptime: Duration) -> StatusReport {
        StatusReport(
            name: s.identity.name, cluster: s.cluster, role: s.role.rawValue, master: s.master, quorate: s.quorate,
            epoch: s.epoch, clusterSize: s.clusterSize, majority: s.majority, connected: s.connected, lost: s.lost,
            metric: s.metric.rawValue,
            masterAddress: s.masterIdentity.map(\.endpoint), address: s.identity.address,
            port: Int(s.identity.port), birth: s.identity.birth, instance: String(s.identity.instance, radix: 16),
            uptimeSeconds: uptime.nanosecondsClamped / 1_000_000_000,
            protocolVersion: Int(s.protocolVersion), clusterProtocolVersion: Int(s.clusterProtocolVersion), protocolBehind: s.protocolBehind,
            noMasterReason: s.noMasterReason?.rawValue, eligible: s.ineligibleReasons.isEmpty,
            ineligibleReasons: s.ineligibleReasons.map(\.rawValue), priority: Int(s.eligibility.priority), witness: s.eligibility.witness,
            preemption: s.pendingPreemption.map { "\($0.name) (priority \($0.priority)) takes over in \($0.after.secondsText)s" })
    }

    static func report(_ p: QuorumInstance.PeerStatus) -> PeerReport {
        PeerReport(
            name: p.identity.name, address: p.identity.address, port: Int(p.identity.port),
            state: PeerReport.State(rawValue: p.state.rawValue) ?? .lost, birth: p.identity.birth,
            instance: String(p.identity.instance, radix: 16),
            lastHeardMillisecondsAgo: p.silence.map { Int64($0.milliseconds) },
            protocolVersion: p.protocolVersion.map(Int.init),
            eligible: p.eligibility.map(\.isEligible), priority: p.eligibility.map { Int($0.priority) },
            healthy: p.eligibility.flatMap { e in e.health == .unchecked ? nil : e.health == .passing },
            standby: p.eligibility?.standby, witness: p.eligibility?.witness)
    }
}
