/// What a node keeps across restarts: its vote, the newest membership it knew, and the
/// names it has seen (for `--expected-nodes`).
///
/// A vote must be on disk before the reply that grants it is sent, so a restarted node can
/// never vote twice in one epoch.
public struct PersistentState: Sendable, Equatable {
    /// 2 adds the joint list's `previous` members and the names seen, 3 the list's cluster,
    /// 4 the departure; files of versions 1 to 3 are read.
    public static let formatVersion: UInt8 = 4

    public var votedEpoch: UInt64 = 0
    public var votedFor: String? = nil
    public var highestEpoch: UInt64 = 0
    public var membership: MembershipList? = nil
    /// Every name this node has seen in the cluster, itself included, in name order.
    public var seenNames: [String] = []
    /// The list this node held when it last said goodbye, if it ever did: it never counts in
    /// that list, or an older one of that cluster, again.
    public var departure: Departure? = nil

    public init(votedEpoch: UInt64 = 0, votedFor: String? = nil, highestEpoch: UInt64 = 0, membership: MembershipList? = nil,
                seenNames: [String] = [], departure: Departure? = nil) {
        self.votedEpoch = votedEpoch
        self.votedFor = votedFor
        self.highestEpoch = highestEpoch
        self.membership = membership
        self.seenNames = seenNames
        self.departure = departure
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u8(0x51)
        w.u8(0x53)  // "QS"
        // Without a departure the file is format 3, which the builds before it read: a node
        // can still be downgraded unless it has left a cluster since.
        w.u8(departure == nil ? 3 : Self.formatVersion)
        w.u64(votedEpoch)
        w.string(votedFor ?? "")
        w.u64(highestEpoch)
        if let c = membership {
            w.u8(1)
            w.u64(c.epoch)
            w.u64(c.version)
            w.members(c.members)
            if let previous = c.previous {
                w.u8(1)
                w.members(previous)
            } else {
                w.u8(0)
            }
            w.u64(c.cluster)
        } else {
            w.u8(0)
        }
        let names = seenNames.prefix(WireFormat.maximumMembers)
        w.u16(UInt16(names.count))
        for n in names { w.string(n) }
        if let d = departure {
            w.u8(1)
            w.u64(d.cluster)
            w.u64(d.stamp.epoch)
            w.u64(d.stamp.version)
        }
        return w.bytes
    }

    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case notAStateFile
        case newerVersion(UInt8)
        case corrupt(WireError)
        public var description: String {
            switch self {
            case .notAStateFile: "not a quorum state file"
            case .newerVersion(let v): "state file format \(v) is newer than this program understands (\(PersistentState.formatVersion))"
            case .corrupt(let e): "corrupt state file: \(e)"
            }
        }
    }

    public init(decoding bytes: [UInt8]) throws(DecodeError) {
        var r = ByteReader(bytes: bytes)
        do {
            guard try r.u8() == 0x51, try r.u8() == 0x53 else { throw DecodeError.notAStateFile }
            let v = try r.u8()
            guard v <= Self.formatVersion, v > 0 else { throw DecodeError.newerVersion(v) }
            votedEpoch = try r.u64()
            let voted = try r.text(maximum: Names.maximumLength)
            votedFor = voted.isEmpty ? nil : voted
            highestEpoch = try r.u64()
            switch try r.u8() {
            case 0: membership = nil
            case 1:
                let e = try r.u64()
                let ver = try r.u64()
                let members = try r.members()
                var previous: [MemberEntry]? = nil
                if v >= 2 {
                    switch try r.u8() {
                    case 0: break
                    case 1: previous = try r.members()
                    case let other: throw WireError.badValue("previous-list flag", Int(other))
                    }
                }
                var cluster: UInt64 = 0
                if v >= 3 { cluster = try r.u64() }
                membership = MembershipList(epoch: e, version: ver, members: members, previous: previous, cluster: cluster)
            case let other: throw WireError.badValue("membership flag", Int(other))
            }
            if v >= 2 {
                let n = Int(try r.u16())
                guard n <= WireFormat.maximumMembers else { throw WireError.tooLong("seen names", n) }
                seenNames = []
                for _ in 0..<n { seenNames.append(try r.name()) }
            } else {
                // A version 1 file: the names of its membership are the names it had seen.
                seenNames = membership?.members.map(\.name) ?? []
            }
            if v >= 4 {
                switch try r.u8() {
                case 0: departure = nil
                case 1: departure = Departure(cluster: try r.u64(), stamp: MembershipStamp(epoch: try r.u64(), version: try r.u64()))
                case let other: throw WireError.badValue("departure flag", Int(other))
                }
            }
            guard r.isAtEnd else { throw WireError.trailingBytes(r.remaining) }
        } catch let e as DecodeError {
            throw e
        } catch let e as WireError {
            throw .corrupt(e)
        } catch {
            throw .notAStateFile
        }
    }
}

extension ByteWriter {
    mutating func members(_ list: [MemberEntry]) {
        let bounded = list.prefix(WireFormat.maximumMembers)
        u16(UInt16(bounded.count))
        for m in bounded { identity(m) }
    }
}

extension ByteReader {
    mutating func members() throws(WireError) -> [MemberEntry] {
        let n = Int(try u16())
        guard n <= WireFormat.maximumMembers else { throw .tooLong("member list", n) }
        return try identities(count: n)
    }
}
