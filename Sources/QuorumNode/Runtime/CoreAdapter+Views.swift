import QuorumControl
import QuorumCore

/// What the control socket, the metrics and `watch` read of the core: snapshots, taken on
/// the node's loop after a tick has accounted for an ended lease or a silent peer.
extension CoreAdapter {
    /// The metrics' state gauges, from the status as it is now (lease included).
    func refreshMetrics() {
        guard let status = status(), let core else { return }
        let holdsLease = core.role == .master && core.currentMaster(now: now())?.name == settings.name
        notices.metrics?.update(status, holdsLease: holdsLease, peers: peerStatuses())
    }

    /// The snapshot a new watcher begins with.
    func watchSnapshot() -> WatchEvent {
        var e = notices.event(.snapshot)
        if let status = status() {
            e.role = status.role.rawValue
            e.master = status.master
            e.quorate = status.quorate
            e.epoch = status.epoch
            e.members = ([settings.name] + peerStatuses().filter { $0.state == .connected }.map(\.identity.name)).sorted()
        } else {
            e.role = "starting"
        }
        return e
    }

    /// The core's status, after a tick has accounted for an ended lease or a silent peer.
    func status() -> QuorumInstance.Status? {
        feed(.tick)
        return core?.status(now: now())
    }

    func peerStatuses() -> [QuorumInstance.PeerStatus] {
        feed(.tick)
        return core?.peerStatuses(now: now()) ?? []
    }

    func forget(_ peer: String) -> ForgetOutcome {
        // Nothing is being handled inside a submitted task: the event's directives come back.
        for case .forgetAnswered(let name, let outcome) in feed(.forgetRequested(name: peer)) where name == peer {
            return outcome
        }
        return .unknown
    }
}
