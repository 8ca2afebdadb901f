/// What a node keeps across restarts: its vote and the newest membership it knew.
///
/// A vote must be on disk before the reply that grants it is sent, so a restarted node can
/// never vote twice in one epoch.
public struct PersistentState: Sendable, Equatable {
    public static let formatVersion: UInt8 = 1

    public var votedEpoch: UInt64 = 0
    public var votedFor: String? = nil
    public var highestEpoch: UInt64 = 0
    public var configuration: MembershipConfiguration? = nil

    public init(votedEpoch: UInt64 = 0, votedFor: String? = nil, highestEpoch: UInt64 = 0, configuration: MembershipConfiguration? = nil) {
        self.votedEpoch = votedEpoch
        self.votedFor = votedFor
        self.highestEpoch = highestEpoch
        self.configuration = configuration
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u8(0x51)
        w.u8(0x53)  // "QS"
        w.u8(Self.formatVersion)
        w.u64(votedEpoch)
        w.string(votedFor ?? "")
        w.u64(highestEpoch)
        if let c = configuration {
            w.u8(1)
            w.u64(c.epoch)
            w.u64(c.version)
            w.u16(UInt16(clamping: c.members.count))
            for m in c.members.prefix(WireFormat.maximumMembers) { w.identity(m) }
        } else {
            w.u8(0)
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
            case 0: configuration = nil
            case 1:
                let e = try r.u64()
                let ver = try r.u64()
                let n = Int(try r.u16())
                guard n <= WireFormat.maximumMembers else { throw WireError.tooLong("member list", n) }
                var members: [MemberEntry] = []
                for _ in 0..<n { members.append(try r.identity()) }
                configuration = MembershipConfiguration(epoch: e, version: ver, members: members)
            case let other: throw WireError.badValue("configuration flag", Int(other))
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
