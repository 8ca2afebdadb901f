import QuorumControl
import Testing

/// Every test here starts real `quorumd` processes on loopback (127.255.255.255 for discovery,
/// a discovery port of its own per test). They run one at a time: a cluster of debug-built
/// nodes keeps a 2-core CI machine busy enough, and the timing assertions want the CPU.
///
/// A failing test prints every node's log (set `QUORUM_TEST_LOGS=1` to see them always).
@Suite("quorumd on loopback", .serialized, .timeLimit(.minutes(3)))
struct IntegrationTests {}

// Shared expectations.

extension LocalCluster {
    /// Waits until the hook log holds at least `count` runs.
    func waitForHookRuns(_ count: Int, of name: String? = nil, timeout: Duration = .seconds(10)) async throws {
        try await waitUntil("\(count) hook run(s)\(name.map { " of \($0)" } ?? "") are recorded", timeout: timeout) {
            (name.map { hookRuns(of: $0) } ?? hookRuns()).count >= count
        }
    }

    /// `name`'s status, which must answer.
    func requireStatus(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> StatusReport {
        try #require(await status(name), "\(name) answers status", sourceLocation: sourceLocation)
    }

    /// The peers `name` lists and their states; the node must answer and list each name once.
    func requirePeerStates(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: PeerReport.State] {
        try #require(await peerStates(name), "\(name) answers peers, each peer listed once", sourceLocation: sourceLocation)
    }

    /// Waits until every one of `observers` lists `peer` in `state` (and lists it once).
    func waitUntilPeer(
        _ peer: String, is state: PeerReport.State, at observers: [String], timeout: Duration = .seconds(10)
    ) async throws {
        try await waitUntil("\(observers) list \(peer) as \(state.rawValue)", timeout: timeout) {
            for observer in observers {
                guard let states = await peerStates(observer), states[peer] == state else { return false }
            }
            return true
        }
    }
}
