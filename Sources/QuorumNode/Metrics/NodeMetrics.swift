import Prometheus
import QuorumControl
import QuorumCore

/// The node's Prometheus metrics (swift-prometheus): every series is made here, once, from
/// this one list, so no name is ever registered twice with another type or help text.
///
/// State gauges (master, quorum, role, epoch, members) are set at scrape time from the same
/// core status `quorumctl status` reads, after a tick that accounts for an ended lease: a
/// master resumed after a pause never exports `quorum_is_master 1` outside its lease.
/// Counters and histograms are fed as things happen. No label grows without bound: roles,
/// member states, hook kinds, results, drop reasons and commands are closed sets.
///
/// Concurrency: fed on the node's event loop, except the control-request counter (the
/// registry's series are atomic).
public final class NodeMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    let hasMaster: Gauge
    let isMaster: Gauge
    let quorate: Gauge
    let epoch: Gauge
    let clusterSize: Gauge
    let majority: Gauge
    let roles: [Role: Gauge]
    let members: [String: Gauge]
    let masterChanges: Counter
    let failover: DurationHistogram
    let hookRuns: [String: Counter]
    let hookDurations: [String: DurationHistogram]
    let dropped: [String: Counter]
    let otherDrops: Counter
    let controlRequests: [String: Counter]
    let reloads: [Bool: Counter]
    let lastReloadSuccessful: Gauge

    /// The reasons a frame or datagram is dropped (`Notices.drop`'s kinds).
    static let dropReasons = ["auth", "cluster", "version", "handshake", "link", "datagram", "announce", "address", "discovery"]
    static let hookResults = ["ok", "failed", "timeout", "not_run"]
    static let failoverBuckets: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10].map { .milliseconds(Int64($0 * 1000)) }
    static let hookBuckets: [Duration] = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60].map { .milliseconds(Int64($0 * 1000)) }

    public init(name: String, cluster: String, startedAtSeconds: Int64) {
        let r = registry
        func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        }
        func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
            labels.isEmpty ? r.makeGauge(descriptor: descriptor(name, help)) : r.makeGauge(descriptor: descriptor(name, help), labels: labels)
        }
        func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Counter {
            labels.isEmpty ? r.makeCounter(descriptor: descriptor(name, help)) : r.makeCounter(descriptor: descriptor(name, help), labels: labels)
        }
        func histogram(_ name: String, _ help: String, _ labels: [(String, String)] = [], buckets: [Duration]) -> DurationHistogram {
            labels.isEmpty
                ? r.makeDurationHistogram(descriptor: descriptor(name, help), buckets: buckets)
                : r.makeDurationHistogram(descriptor: descriptor(name, help), labels: labels, buckets: buckets)
        }
        gauge("quorum_build_info", "Always 1: the build's version and protocol", [("version", BuildInfo.version), ("protocol", "\(WireFormat.version)")]).set(to: 1)
        gauge("quorum_node_info", "Always 1: this node's name and cluster, for joins", [("name", name), ("cluster", cluster)]).set(to: 1)
        gauge("quorum_start_time_seconds", "When this node started, in seconds since 1970").set(to: Double(startedAtSeconds))
        hasMaster = gauge("quorum_has_master", "1 when this node knows a master with a live lease")
        isMaster = gauge("quorum_is_master", "1 when this node is master and holds its lease now")
        quorate = gauge("quorum_quorate", "1 when this node is in the majority")
        epoch = gauge("quorum_epoch", "The epoch of the master, or the highest this node knows (a fencing number)")
        clusterSize = gauge("quorum_cluster_size", "Members of this node's list, itself included")
        majority = gauge("quorum_majority", "Votes needed for a master")
        var roles: [Role: Gauge] = [:]
        for role in Role.allCases {
            roles[role] = gauge("quorum_role", "1 for this node's role, 0 for the others", [("role", role.rawValue)])
        }
        self.roles = roles
        var members: [String: Gauge] = [:]
        for state in ["connected", "lost", "dispatched"] {
            members[state] = gauge("quorum_members", "Other nodes this node knows, by state", [("state", state)])
        }
        self.members = members
        masterChanges = counter("quorum_master_changes_seen_total", "Changes of master (name or epoch) this node saw")
        failover = histogram("quorum_failover_duration_seconds", "From the first sign that the master was gone to a new master known on this node", buckets: Self.failoverBuckets)
        var hookRuns: [String: Counter] = [:]
        var hookDurations: [String: DurationHistogram] = [:]
        for hook in ["master", "slave"] {
            for result in Self.hookResults {
                hookRuns[hook + "/" + result] = counter("quorum_hook_runs_total", "Hook runs, by hook and result", [("hook", hook), ("result", result)])
            }
            hookDurations[hook] = histogram("quorum_hook_duration_seconds", "How long hooks ran", [("hook", hook)], buckets: Self.hookBuckets)
        }
        self.hookRuns = hookRuns
        self.hookDurations = hookDurations
        var dropped: [String: Counter] = [:]
        for reason in Self.dropReasons {
            dropped[reason] = counter("quorum_frames_dropped_total", "Frames and datagrams dropped, by reason", [("reason", reason)])
        }
        self.dropped = dropped
        otherDrops = counter("quorum_frames_dropped_total", "Frames and datagrams dropped, by reason", [("reason", "other")])
        var controlRequests: [String: Counter] = [:]
        for command in ControlRequest.Command.allCases {
            for result in ["ok", "refused"] {
                controlRequests[command.rawValue + "/" + result] = counter("quorum_control_requests_total", "Control-socket requests, by command and result", [("command", command.rawValue), ("result", result)])
            }
        }
        self.controlRequests = controlRequests
        reloads = [
            true: counter("quorum_config_reloads_total", "Reloads, by result", [("result", "success")]),
            false: counter("quorum_config_reloads_total", "Reloads, by result", [("result", "failure")]),
        ]
        lastReloadSuccessful = gauge("quorum_config_last_reload_successful", "0 when the last reload was refused")
        lastReloadSuccessful.set(to: 1)
    }

    /// The state gauges, from a status taken now.
    func update(_ status: QuorumInstance.Status, holdsLease: Bool, peers: [QuorumInstance.PeerStatus]) {
        hasMaster.set(to: status.master != nil ? 1 : 0)
        isMaster.set(to: status.role == .master && holdsLease ? 1 : 0)
        quorate.set(to: status.quorate ? 1 : 0)
        epoch.set(to: Double(status.epoch))
        clusterSize.set(to: Double(status.clusterSize))
        majority.set(to: Double(status.majority))
        for (role, gauge) in roles { gauge.set(to: role == status.role ? 1 : 0) }
        for (state, gauge) in members { gauge.set(to: Double(peers.filter { $0.state.rawValue == state }.count)) }
    }

    func hookFinished(master: Bool, outcome: HookOutcome, after duration: Duration) {
        let hook = master ? "master" : "slave"
        let result: String
        switch outcome {
        case .exited(0): result = "ok"
        case .timedOut: result = "timeout"
        case .notRun: result = "not_run"
        default: result = "failed"
        }
        hookRuns[hook + "/" + result]?.increment()
        hookDurations[hook]?.record(duration)
    }

    func dropped(_ kind: String) {
        (dropped[kind] ?? otherDrops).increment()
    }

    public func controlRequest(_ command: ControlRequest.Command, ok: Bool) {
        controlRequests[command.rawValue + "/" + (ok ? "ok" : "refused")]?.increment()
    }

    func reloaded(applied: Bool) {
        reloads[applied]?.increment()
        lastReloadSuccessful.set(to: applied ? 1 : 0)
    }

    /// The whole exposition, Prometheus text format 0.0.4.
    public func exposition() -> [UInt8] { registry.emitToBuffer() }
}
