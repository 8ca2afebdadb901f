/// The membership list a node holds, the overlay of goodbyes it heard, the names it has
/// seen, and the one rule for what a quorum is.
///
/// A *plain* list is in force alone: a quorum is a strict majority of its members, or with
/// the tie-breaker exactly half of them holding the list's first member. A
/// *joint* list (one with `previous`) is a change not yet known to a quorum of the list
/// before it: a quorum is then a strict majority of each list, and the tie-breaker does not
/// count. So every quorum that can elect under any list still in force shares a member with
/// every other (docs/protocol.md, "Membership changes").
struct Membership: Sendable {
    private(set) var list: MembershipList
    /// Names that said goodbye to us (their instance) or were forgotten here (0): not
    /// counted until they re-enter or the master's list drops them.
    var departed: [String: UInt64] = [:]
    /// Every name seen in the cluster, this node's included (persisted, for `--expected-nodes`).
    var seen: Set<String>
    let tieBreaker: Bool
    /// `--expected-nodes`: the smallest cluster a brand-new list may found is a majority of it.
    let expectedNodes: Int?
    /// Test only: the tie-breaker counts over an unfinished change (hole 1).
    let plantedNoJointQuorum: Bool
    /// Test only: the tie-breaker's half holds the best member by this metric, as each node
    /// sees the members' latest identities (hole 9).
    var plantedBestBy: Metric? = nil

    init(list: MembershipList, seen: Set<String>, tieBreaker: Bool, expectedNodes: Int?, plantedNoJointQuorum: Bool) {
        self.list = list
        self.seen = seen
        self.tieBreaker = tieBreaker
        self.expectedNodes = expectedNodes
        self.plantedNoJointQuorum = plantedNoJointQuorum
    }

    var stamp: MembershipStamp { list.stamp }
    var isJoint: Bool { list.previous != nil }

    /// The members that count: the list less the nodes that said goodbye to us.
    var members: [MemberEntry] { counted(list.members) }
    /// The list before an unfinished change, with the same overlay.
    var previous: [MemberEntry]? { list.previous.map(counted) }

    private func counted(_ entries: [MemberEntry]) -> [MemberEntry] {
        departed.isEmpty ? entries : entries.filter { departed[$0.name] == nil }
    }

    func isMember(_ name: String) -> Bool { members.contains { $0.name == name } }

    /// Whether the list itself (members, or the list before a change) names `name`, goodbyes
    /// aside: the test for whether a list or a master belongs to this node's cluster.
    func names(_ name: String) -> Bool { list.names(name) }

    /// A voter: a member, or during a change a member of the list before it (a quorum then
    /// needs a majority of both lists).
    func isVoter(_ name: String) -> Bool { isMember(name) || (previous ?? []).contains { $0.name == name } }

    func entry(_ name: String) -> MemberEntry? { members.first { $0.name == name } }

    // MARK: Quorums

    /// `true` when `present` is a strict majority of `entries`.
    static func isMajority(_ present: Set<String>, of entries: [MemberEntry]) -> Bool {
        guard !entries.isEmpty else { return false }
        return entries.filter { present.contains($0.name) }.count * 2 > entries.count
    }

    /// A plain list's rule: a strict majority, or exactly half holding the list's first member
    /// (its *anchor*). The anchor is a property of the list as its master made it, the same on
    /// every node that holds it and unchanged by restarts: the best member by the metric is
    /// not (a restart is a new birth), and two halves that each held "the best" by their own
    /// view once elected apart (seed 3717). The master that founds a cluster puts itself first,
    /// later masters move themselves first by an ordinary change, and every change keeps the
    /// order of the members it keeps, so the anchor is the master as soon as its list settles. The
    /// half counts only over the list as it stands: while goodbyes not yet in a new list leave
    /// fewer members counted, a node that said one may still count itself elsewhere (it may
    /// have started again and taken the list), and a majority of the fewer members shares a
    /// member with every majority of the whole list, but half of them need not.
    func isPlainQuorum(_ present: Set<String>, of entries: [MemberEntry]) -> Bool {
        if Self.isMajority(present, of: entries) { return true }
        // Nor over a new list no master has made (every node seen before a master counts
        // there, a member of another cluster included: seed 36700).
        guard tieBreaker, list.stamp != .bootstrap, departed.keys.allSatisfy({ !list.names($0) }),
              !entries.isEmpty, entries.filter({ present.contains($0.name) }).count * 2 == entries.count,
              let anchor = plantedBestBy.map({ $0.best(of: entries) }) ?? entries.first else { return false }
        return present.contains(anchor.name)
    }

    /// `true` when `present` may elect a master under this list.
    func isQuorum(_ present: Set<String>) -> Bool {
        // A brand-new cluster with `--expected-nodes N` forms only with a strict majority of
        // N, as Corosync's expected votes: the nodes seen may since have said goodbye, and a
        // majority of the few left need not meet the majority that founded a cluster elsewhere
        // (seed 3959: two left, and the third, suspended meanwhile, founded a cluster alone).
        if list.stamp == .bootstrap, let n = expectedNodes,
           members.filter({ present.contains($0.name) }).count * 2 <= n { return false }
        if let previous, !plantedNoJointQuorum {
            return Self.isMajority(present, of: members) && Self.isMajority(present, of: previous)
        }
        return isPlainQuorum(present, of: members)
    }

    /// `true` when every node in `present` promising its vote keeps every quorum that could
    /// elect under a list still in force from electing: the set backs a master's lease.
    /// During a change every such quorum holds a quorum of the list before it.
    func blocksElections(_ present: Set<String>) -> Bool {
        if let previous {
            if plantedNoJointQuorum { return isPlainQuorum(present, of: members) || isPlainQuorum(present, of: previous) }
            return isPlainQuorum(present, of: previous)
        }
        return isPlainQuorum(present, of: members)
    }

    /// `true` when the nodes in `having` (those whose list is at least `stamp`) make the list
    /// known to a quorum: a strict majority of it and, for a joint list, of the list before.
    func isKnown(by having: Set<String>) -> Bool {
        guard Self.isMajority(having, of: members) else { return false }
        if let previous { return Self.isMajority(having, of: previous) }
        return true
    }

    // MARK: Changes

    /// `entries` with `name` moved to the front, the others in their order.
    static func anchored(_ entries: [MemberEntry], first name: String) -> [MemberEntry] {
        entries.filter { $0.name == name } + entries.filter { $0.name != name }
    }

    /// Replaces the list (adopted from a master, or made by this node as master).
    mutating func replace(with new: MembershipList) {
        // Goodbyes heard in one cluster say nothing of another's list, which may name the same
        // nodes as members that came back (seed 1120: a node that counted three out joined
        // the cluster they had founded since, and counted only itself there).
        if !new.isSameCluster(as: list) { departed = [:] }
        list = new
        // A departed name the new list no longer holds needs no overlay any more.
        for name in departed.keys where !new.members.contains(where: { $0.name == name })
            && !(new.previous ?? []).contains(where: { $0.name == name }) {
            departed[name] = nil
        }
    }

    /// Records the latest identity of a member (a re-entry, or this start of ours).
    mutating func updateIdentity(_ id: NodeIdentity) {
        if let i = list.members.firstIndex(where: { $0.name == id.name }) { list.members[i] = id }
        if let i = list.previous?.firstIndex(where: { $0.name == id.name }) { list.previous?[i] = id }
    }

    /// Before any master exists, every node seen counts.
    mutating func addBeforeAnyMaster(_ id: NodeIdentity) {
        guard list.stamp == .bootstrap, !list.members.contains(where: { $0.name == id.name }) else { return }
        list.members.append(id)
    }
}
