/// Why a node has no master, as `status` tells it (`noMasterReason`; `null` with a master).
public enum NoMasterReason: String, Sendable, CaseIterable {
    /// In its discovery window, or between one master's end and the next election.
    case electing
    /// Too few members are alive for a strict majority of the list.
    case noQuorum = "no-quorum"
    /// `--expected-nodes`: a brand-new cluster has not yet seen every expected node.
    case expectedNodesNotSeen = "expected-nodes-not-seen"
    /// This node is not on the cluster's list yet (a newcomer waiting to be admitted).
    case notAdmitted = "not-admitted"
    /// A master is stepping down in order (this node, or a planned step-down it was told of):
    /// the old master's slave hook runs before the next master may be elected.
    case handover
    /// This node left the cluster.
    case dispatched
    /// No alive member may be master: all are in standby, of priority 0, failing their
    /// checks, or witnesses.
    case noEligibleMember = "no-eligible-member"
    /// A witness among members that do not all speak protocol 3: it cannot tell them it never
    /// stands, so it keeps out of elections.
    case featuresInactive = "features-inactive"

    /// One line for the status table.
    public var explanation: String {
        switch self {
        case .electing: "electing (discovery window, or an election under way)"
        case .noQuorum: "no quorum: too few members alive for a majority"
        case .expectedNodesNotSeen: "waiting for --expected-nodes to be seen"
        case .notAdmitted: "not yet admitted to the cluster's list"
        case .handover: "a planned handover is under way: the old master's slave hook runs before the next election"
        case .dispatched: "this node left the cluster"
        case .noEligibleMember: "no alive member may be master (standby, priority 0, failing checks, witnesses)"
        case .featuresInactive: "a witness needs every member on protocol 3"
        }
    }
}
