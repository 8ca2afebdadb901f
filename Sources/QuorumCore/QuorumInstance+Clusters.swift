/// Two clusters that meet.
///
/// A node started alone (new, wiped, or after leaving) becomes master of a cluster of its
/// own; when it later meets the cluster it was cut off from, the two must become one
/// without any member of either being master beside the other's master. So a node *settled*
/// in a cluster (its list, not a new one, names it) neither follows a master its list does
/// not name nor adopts a list that does not name it; a master admits only nodes that follow
/// it; and of two clusters the one whose list outranks (more members, then the newer stamp)
/// stays, while the other dissolves into it: its master steps down in order, then every
/// member, once it follows no one and has promised no one its vote, takes the outranking
/// list as a newcomer and is admitted by that cluster's master (docs/protocol.md, "Two
/// clusters that meet").
extension QuorumInstance {
    /// This node's list is a real cluster's, and names it.
    var isSettled: Bool { membership.stamp != .bootstrap && membership.names(name) }

    /// A list heard from a peer. One of this node's cluster, or any list while this node has
    /// only a new list of its own, is adopted when newer. Another cluster's list a settled
    /// node ranks against its own; a node waiting for admission keeps whichever list
    /// outranks, so it never goes back to a cluster it has left.
    mutating func onList(_ list: MembershipList, from sender: String, now: Instant, into out: inout [Directive]) {
        if let d = persistent.departure, d.isOfCluster(list), list.names(name) {
            let older = list.stamp < d.stamp
            if older || countsItselfOut { sayLeft(d, through: list.stamp, to: sender, into: &out) }
            if older { return }
        }
        if list.stamp == .bootstrap {
            mergeBootstrap(list, into: &out)
        } else if membership.stamp == .bootstrap || list.isSameCluster(as: membership.list) {
            adopt(list, from: sender, now: now, into: &out)
        } else if isSettled {
            meetCluster(list, from: sender, now: now, into: &out)
        } else if list.outranks(membership.list) {
            adopt(list, from: sender, evenIfOlder: true, now: now, into: &out)
        }
    }

    /// A master this node must not follow: its own list does not name it, or the process that
    /// bears the name holds another cluster's list. A member that left (or was lost) and
    /// started again alone founds a cluster apart under its old name; when it meets this
    /// cluster, whose list still names it, it re-enters here as a member while it is master
    /// there. Following it would take an epoch of that cluster for one of this: a master of
    /// this cluster would drop its step-down midway and vote while its slave hook still ran
    /// (seed 68003). Known from the list it sent (a master sends its list before any
    /// heartbeat that holds its epoch), while its heartbeats still carry that list's stamp.
    func isForeignMaster(_ master: String) -> Bool {
        guard isSettled else { return false }
        if !membership.names(master) { return true }
        guard let p = peers[master], let theirs = p.list, theirs.stamp == p.membership else { return false }
        return !theirs.isSameCluster(as: membership.list)
    }

    /// Another cluster's list: remember it when it outranks this node's cluster.
    mutating func meetCluster(_ list: MembershipList, from sender: String, now: Instant, into out: inout [Directive]) {
        guard list.outranks(membership.list), outrankingCluster.map({ list.outranks($0) }) ?? true else { return }
        if outrankingCluster == nil {
            out.append(.notice(.clusterMet(size: list.members.count, stamp: list.stamp, via: sender)))
        }
        outrankingCluster = list
    }

    /// A node of a cluster that is dissolving takes the outranking list once it follows no one
    /// and owes no vote: from then on it is a newcomer there.
    mutating func joinOutrankingCluster(now: Instant, into out: inout [Directive]) {
        guard let list = outrankingCluster, case .follower = state, promise == nil else { return }
        outrankingCluster = nil
        pendingVote = nil
        take(list, into: &out)
    }
}
