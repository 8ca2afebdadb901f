#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One line of `quorumctl watch`: something that happened on the node, or the snapshot that
/// opens every watch. On the wire one JSON object per line; keys that do not apply are left out.
///
/// Every event has `type`, `node`, `instance` (this start of the node), `epoch` (an integer:
/// the epoch of the node's master, or the highest it knows) and `time` (UTC, milliseconds).
public struct WatchEvent: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// The node's state when the watch began: role, master, quorate, members.
        case snapshot
        /// This node took a role (`role`, `previousRole`, `cause`).
        case role
        /// The node follows a new master (`master`).
        case master
        /// The master is gone and none is known yet (`previousMaster`).
        case masterGone = "master-gone"
        case peerJoined = "peer-joined"
        case peerReentered = "peer-reentered"
        /// A member stopped answering (`evidence` says how that was seen).
        case peerLost = "peer-lost"
        /// A member left gracefully.
        case peerLeft = "peer-left"
        case peerForgotten = "peer-forgotten"
        case hookStarted = "hook-started"
        /// `outcome` (`exit 0`, `exit 1`, `killed after timeout`, …) and `durationMilliseconds`.
        case hookFinished = "hook-finished"
        /// A queued hook was not run (`outcome` says why).
        case hookSkipped = "hook-skipped"
        /// The configuration was reloaded (`applied`, `outcome`).
        case reload
        /// This watcher read too slowly: `dropped` events were lost, and the watch ends.
        case overflow
    }

    public var type: Kind
    public var node: String
    public var instance: String
    public var epoch: UInt64
    public var time: String
    public var role: String?
    public var previousRole: String?
    public var cause: String?
    public var master: String?
    public var previousMaster: String?
    public var quorate: Bool?
    public var members: [String]?
    public var peer: String?
    public var evidence: String?
    /// `master` or `slave` (which hook file), for hook events.
    public var hook: String?
    public var hookId: UInt64?
    public var outcome: String?
    public var durationMilliseconds: Int64?
    public var applied: Bool?
    public var dropped: Int?

    public init(type: Kind, node: String, instance: String, epoch: UInt64, millisecondsSinceEpoch: Int64) {
        self.type = type
        self.node = node
        self.instance = instance
        self.epoch = epoch
        self.time = ISO8601.utc(millisecondsSinceEpoch: millisecondsSinceEpoch)
    }

    /// The event as one JSON line, newline included.
    public func encodedLine() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Strings, integers and booleans only: always encodes.
        return Array(try! encoder.encode(self)) + [UInt8(ascii: "\n")]
    }

    public static func parse(_ line: [UInt8]) throws -> WatchEvent {
        try JSONDecoder().decode(WatchEvent.self, from: Data(line))
    }

    /// One line for people: `2026-12-02T21:14:03.123Z B master A (epoch 6)`.
    public var text: String {
        let what: String
        switch type {
        case .snapshot:
            what = "is \(role ?? "?"); master \(master ?? "none") (epoch \(epoch))\(quorate == false ? "; no quorum" : ""); members \((members ?? []).joined(separator: ", ")) [instance \(instance)]"
        case .role:
            what = "is now \(role ?? "?") (was \(previousRole ?? "?"), epoch \(epoch)\(cause.map { ", \($0)" } ?? ""))"
        case .master: what = "has master \(master ?? "?") (epoch \(epoch))"
        case .masterGone: what = "has no master: \(previousMaster ?? "?") is gone (epoch \(epoch))"
        case .peerJoined: what = "sees \(peer ?? "?") join"
        case .peerReentered: what = "sees \(peer ?? "?") re-enter with a new instance"
        case .peerLost: what = "lost \(peer ?? "?")\(evidence.map { " (\($0))" } ?? "")"
        case .peerLeft: what = "sees \(peer ?? "?") leave"
        case .peerForgotten: what = "forgot \(peer ?? "?")"
        case .hookStarted: what = "started its \(hook ?? "?") hook #\(hookId ?? 0) (epoch \(epoch))"
        case .hookFinished: what = "finished its \(hook ?? "?") hook #\(hookId ?? 0): \(outcome ?? "?") in \(durationMilliseconds ?? 0) ms"
        case .hookSkipped: what = "skipped a \(hook ?? "?") hook #\(hookId ?? 0): \(outcome ?? "?")"
        case .reload: what = outcome ?? (applied == true ? "reloaded" : "reload refused")
        case .overflow: what = "dropped \(dropped ?? 0) events for this slow watcher; the watch ends"
        }
        return "\(time) \(node) \(what)"
    }
}
