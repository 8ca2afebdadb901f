/// The binary wire format of frames (TCP peer links) and datagrams (discovery).
///
/// ```
/// offset size
///  0     2   magic 0x51 0x4D ("QM")
///  2     1   format version: the protocol version that brought the message type in
///  3     1   message type
///  4     1   flags (0; reserved)
///  5     1   authentication tag length T (0 until the security issue; at most 64)
///  6     4   payload length P, big endian (at most `maximumPayload`)
/// 10     T   authentication tag
/// 10+T   P   payload
/// ```
///
/// Every length is bounded. Decoding any byte string returns a message, `needMoreData`, a
/// frame to skip (a newer version, for rolling upgrades) or an error; it never traps.
///
/// Protocol versions: a frame's format version is the version that introduced its type, so
/// a build that speaks up to version N skips, whole and without error, every frame of a
/// type it does not know. Version 1 is every type up to `nameTaken`; version 2 adds
/// `versions`, which a link sends before its `hello` (docs/protocol.md, "Protocol versions");
/// version 3 adds `eligibility` (priority, preemption, standby, health, witness) and the
/// planned step-down's `stepDown`, `stepDownAnswer` and `handover`; version 4 adds `left`
/// (a goodbye that never reached a member, said again by the next start).
public enum WireFormat {
    public static let magic: (UInt8, UInt8) = (0x51, 0x4D)
    /// The highest protocol version this build speaks.
    public static let version: UInt8 = 4
    /// The lowest protocol version this build speaks (and the version of a peer that never
    /// said which it speaks).
    public static let lowestVersion: UInt8 = 1
    public static let headerSize = 10
    public static let maximumTag = 64
    public static let maximumPayload = 64 * 1024
    /// The largest discovery datagram a node sends or accepts.
    public static let maximumDatagram = 1024
    public static let maximumMembers = 1024
    public static let maximumAddressLength = 64
    /// The longest refusal line a step-down answer carries.
    public static let maximumRefusalText = 255

    enum MessageType: UInt8 {
        case announce = 1, hello, heartbeat, voteRequest, voteReply, members, resign, bye, forget, nameTaken
        case versions
        case eligibility, stepDown, stepDownAnswer, handover
        case left

        /// The protocol version that brought this type in: its frames' format version.
        var since: UInt8 {
            switch self {
            case .versions: 2
            case .eligibility, .stepDown, .stepDownAnswer, .handover: 3
            case .left: 4
            default: 1
            }
        }
    }

    public enum DecodeResult: Equatable, Sendable {
        /// A whole frame was decoded; `consumed` bytes belong to it.
        case message(Message, consumed: Int)
        /// The bytes so far are a valid prefix; wait for more. Nothing is consumed.
        case needMoreData
        /// A well-formed frame of a newer format version: skip `consumed` bytes.
        case unsupportedVersion(UInt8, consumed: Int)
    }

    // MARK: Encoding

    public static func encode(_ message: Message) -> [UInt8] {
        var payload = ByteWriter()
        let type: MessageType
        switch message {
        case .announce(let a):
            type = .announce
            payload.string(a.cluster)
            payload.identity(a.identity)
        case .hello(let h):
            type = .hello
            payload.string(h.cluster)
            payload.identity(h.identity)
        case .heartbeat(let h):
            type = .heartbeat
            payload.u64(h.epoch)
            payload.u8(h.role.wireValue)
            payload.optionalU64(h.holding)
            if let f = h.following {
                payload.u8(1)
                payload.string(f.name)
                payload.u64(f.instance)
                payload.u64(f.epoch)
            } else {
                payload.u8(0)
            }
            payload.u64(h.sequence)
            payload.u64(h.echo)
            payload.u64(h.membership.epoch)
            payload.u64(h.membership.version)
        case .voteRequest(let epoch):
            type = .voteRequest
            payload.u64(epoch)
        case .voteReply(let epoch, let granted):
            type = .voteReply
            payload.u64(epoch)
            payload.u8(granted ? 1 : 0)
        case .members(let c):
            type = .members
            payload.u64(c.epoch)
            payload.u64(c.version)
            payload.u16(UInt16(clamping: c.members.count))
            for m in c.members.prefix(maximumMembers) { payload.identity(m) }
            // A joint list carries the list before the change, and a list of a known cluster
            // its cluster after that; a plain list of no known cluster ends here, as in the
            // first format.
            if let previous = c.previous {
                payload.u8(1)
                payload.u16(UInt16(clamping: previous.count))
                for m in previous.prefix(maximumMembers) { payload.identity(m) }
            } else if c.cluster != 0 {
                payload.u8(0)
            }
            if c.cluster != 0 { payload.u64(c.cluster) }
        case .resign(let epoch):
            type = .resign
            payload.u64(epoch)
        case .bye:
            type = .bye
        case .forget(let name):
            type = .forget
            payload.string(name)
        case .nameTaken(let holder):
            type = .nameTaken
            payload.identity(holder)
        case .versions(let range):
            type = .versions
            payload.u8(range.lowest)
            payload.u8(range.highest)
        case .eligibility(let e):
            type = .eligibility
            payload.u8(e.priority)
            payload.u8((e.preempt ? 1 : 0) | (e.standby ? 2 : 0) | (e.witness ? 4 : 0))
            payload.u8(e.health.rawValue)
            payload.milliseconds(min(e.preemptDelay, Eligibility.maximumPreemptDelay))
        case .stepDown(let request):
            type = .stepDown
            payload.u64(request.id)
            payload.optionalString(request.target)
            payload.milliseconds(request.timeout)
        case .stepDownAnswer(let id, let answer):
            type = .stepDownAnswer
            payload.u64(id)
            switch answer {
            case .accepted(let from, let to, let epoch):
                payload.u8(0)
                payload.string(from)
                payload.string(to)
                payload.u64(epoch)
            case .refused(let refusal):
                payload.u8(refusal.reason.rawValue)
                payload.text(refusal.message, maximum: maximumRefusalText)
            }
        case .handover(let epoch, let target, let within):
            type = .handover
            payload.u64(epoch)
            payload.string(target)
            payload.milliseconds(within)
        case .left(let d):
            type = .left
            payload.u64(d.cluster)
            payload.u64(d.stamp.epoch)
            payload.u64(d.stamp.version)
        }
        var frame = [UInt8]()
        frame.reserveCapacity(headerSize + payload.bytes.count)
        frame.append(magic.0)
        frame.append(magic.1)
        frame.append(type.since)
        frame.append(type.rawValue)
        frame.append(0)  // flags
        frame.append(0)  // tag length
        let n = UInt32(payload.bytes.count)
        frame.append(UInt8(truncatingIfNeeded: n >> 24))
        frame.append(UInt8(truncatingIfNeeded: n >> 16))
        frame.append(UInt8(truncatingIfNeeded: n >> 8))
        frame.append(UInt8(truncatingIfNeeded: n))
        frame.append(contentsOf: payload.bytes)
        return frame
    }

    // MARK: Decoding

    /// Decodes the frame at the start of `bytes`, as a build that speaks up to protocol
    /// version `speaking` would (frames of a newer version are to be skipped).
    public static func decode<Bytes: RandomAccessCollection>(_ bytes: Bytes, speaking: UInt8 = version) throws(WireError) -> DecodeResult
    where Bytes.Element == UInt8, Bytes.Index == Int {
        let base = bytes.startIndex
        let available = bytes.count
        // Check what we have of the header as early as possible, so garbage is refused at once.
        if available >= 1, bytes[base] != magic.0 { throw .badMagic }
        if available >= 2, bytes[base + 1] != magic.1 { throw .badMagic }
        guard available >= headerSize else { return .needMoreData }
        let formatVersion = bytes[base + 2]
        let rawType = bytes[base + 3]
        let tagLength = Int(bytes[base + 5])
        let payloadLength = Int(bytes[base + 6]) << 24 | Int(bytes[base + 7]) << 16 | Int(bytes[base + 8]) << 8 | Int(bytes[base + 9])
        guard tagLength <= maximumTag else { throw .tooLong("authentication tag", tagLength) }
        guard payloadLength <= maximumPayload else { throw .tooLong("payload", payloadLength) }
        if formatVersion == 0 { throw .badVersion(formatVersion) }
        let total = headerSize + tagLength + payloadLength
        guard available >= total else { return .needMoreData }
        if formatVersion > speaking { return .unsupportedVersion(formatVersion, consumed: total) }
        guard let type = MessageType(rawValue: rawType) else { throw .unknownType(rawType) }
        // A type sent under an older format version than the one that brought it in.
        guard type.since <= formatVersion else { throw .unknownType(rawType) }
        let start = base + headerSize + tagLength
        var r = ByteReader(bytes: Array(bytes[start..<(start + payloadLength)]))
        let message: Message
        switch type {
        case .announce:
            message = .announce(Announce(cluster: try r.name(), identity: try r.identity()))
        case .hello:
            message = .hello(Hello(cluster: try r.name(), identity: try r.identity()))
        case .heartbeat:
            let epoch = try r.u64()
            let role = try Role(wireValue: r.u8())
            let holding = try r.optionalU64()
            let following: MasterClaim?
            switch try r.u8() {
            case 0: following = nil
            case 1: following = MasterClaim(name: try r.name(), instance: try r.u64(), epoch: try r.u64())
            case let other: throw .badValue("following flag", Int(other))
            }
            let sequence = try r.u64()
            let echo = try r.u64()
            let stamp = MembershipStamp(epoch: try r.u64(), version: try r.u64())
            message = .heartbeat(Heartbeat(epoch: epoch, role: role, holding: holding, following: following, sequence: sequence, echo: echo, membership: stamp))
        case .voteRequest:
            message = .voteRequest(epoch: try r.u64())
        case .voteReply:
            let epoch = try r.u64()
            let granted: Bool
            switch try r.u8() {
            case 0: granted = false
            case 1: granted = true
            case let other: throw .badValue("granted flag", Int(other))
            }
            message = .voteReply(epoch: epoch, granted: granted)
        case .members:
            let epoch = try r.u64()
            let version = try r.u64()
            let count = Int(try r.u16())
            guard count <= maximumMembers else { throw .tooLong("member list", count) }
            let members = try r.identities(count: count)
            var previous: [MemberEntry]? = nil
            var cluster: UInt64 = 0
            if !r.isAtEnd {
                switch try r.u8() {
                case 0: break
                case 1:
                    let n = Int(try r.u16())
                    guard n <= maximumMembers else { throw .tooLong("previous member list", n) }
                    previous = try r.identities(count: n)
                case let other: throw .badValue("previous-list flag", Int(other))
                }
                if !r.isAtEnd { cluster = try r.u64() }
            }
            message = .members(MembershipList(epoch: epoch, version: version, members: members, previous: previous, cluster: cluster))
        case .resign:
            message = .resign(epoch: try r.u64())
        case .bye:
            message = .bye
        case .forget:
            message = .forget(name: try r.name())
        case .nameTaken:
            message = .nameTaken(holder: try r.identity())
        case .versions:
            let lowest = try r.u8()
            let highest = try r.u8()
            guard lowest >= 1, lowest <= highest else { throw .badValue("protocol version range", Int(lowest) << 8 | Int(highest)) }
            message = .versions(ProtocolRange(lowest: lowest, highest: highest))
        case .eligibility:
            let priority = try r.u8()
            let flags = try r.u8()
            guard flags & ~7 == 0 else { throw .badValue("eligibility flags", Int(flags)) }
            let healthValue = try r.u8()
            guard let health = Eligibility.Health(rawValue: healthValue) else { throw .badValue("health", Int(healthValue)) }
            let delay = try r.milliseconds()
            guard delay <= Eligibility.maximumPreemptDelay else { throw .badValue("preempt delay", Int(delay.nanosecondsClamped / 1_000_000)) }
            message = .eligibility(Eligibility(priority: priority, preempt: flags & 1 != 0, preemptDelay: delay,
                                               standby: flags & 2 != 0, health: health, witness: flags & 4 != 0))
        case .stepDown:
            let id = try r.u64()
            let target = try r.optionalName()
            let timeout = try r.milliseconds()
            guard StepDownRequest.timeoutRange.contains(timeout) else { throw .badValue("step-down timeout", Int(timeout.nanosecondsClamped / 1_000_000)) }
            message = .stepDown(StepDownRequest(id: id, target: target, timeout: timeout))
        case .stepDownAnswer:
            let id = try r.u64()
            let code = try r.u8()
            if code == 0 {
                message = .stepDownAnswer(id: id, .accepted(from: try r.name(), to: try r.name(), epoch: try r.u64()))
            } else {
                guard let reason = StepDownRefusal.Reason(rawValue: code) else { throw .badValue("step-down answer", Int(code)) }
                message = .stepDownAnswer(id: id, .refused(StepDownRefusal(reason, try r.text(maximum: maximumRefusalText))))
            }
        case .handover:
            let epoch = try r.u64()
            let target = try r.name()
            let within = try r.milliseconds()
            guard within <= StepDownRequest.timeoutRange.upperBound else { throw .badValue("handover time", Int(within.nanosecondsClamped / 1_000_000)) }
            message = .handover(epoch: epoch, to: target, within: within)
        case .left:
            let cluster = try r.u64()
            let stamp = MembershipStamp(epoch: try r.u64(), version: try r.u64())
            guard stamp != .bootstrap else { throw .badValue("left list", 0) }
            message = .left(Departure(cluster: cluster, stamp: stamp))
        }
        guard r.isAtEnd else { throw .trailingBytes(r.remaining) }
        return .message(message, consumed: total)
    }

    /// Decodes one whole discovery datagram: exactly one frame, within `maximumDatagram`.
    public static func decodeDatagram(_ bytes: [UInt8], speaking: UInt8 = version) throws(WireError) -> Message? {
        guard bytes.count <= maximumDatagram else { throw .tooLong("datagram", bytes.count) }
        switch try decode(bytes, speaking: speaking) {
        case .needMoreData: throw .truncated
        case .unsupportedVersion: return nil
        case .message(let m, let consumed):
            guard consumed == bytes.count else { throw .trailingBytes(bytes.count - consumed) }
            return m
        }
    }
}

extension Role {
    var wireValue: UInt8 {
        switch self {
        case .discovering: 0
        case .master: 1
        case .slave: 2
        case .noQuorum: 3
        case .dispatched: 4
        // Older builds know no witness role: it is a slave to them (the witness bit travels
        // in its eligibility frame).
        case .witness: 2
        }
    }

    init(wireValue: UInt8) throws(WireError) {
        switch wireValue {
        case 0: self = .discovering
        case 1: self = .master
        case 2: self = .slave
        case 3: self = .noQuorum
        case 4: self = .dispatched
        default: throw .badValue("role", Int(wireValue))
        }
    }
}

extension WireFormat {
    /// The length of the whole frame (plain or sealed) at the start of `bytes`, read from its
    /// header, or nil while the header is incomplete. Refuses a bad magic as soon as its bytes
    /// arrive and bounds the tag and payload lengths as `decode` does. Every reader that splits
    /// a byte stream into frames asks here (the header's layout has this one owner outside
    /// `decode`).
    public static func frameLength<Bytes: Collection>(_ bytes: Bytes) throws(WireError) -> Int? where Bytes.Element == UInt8 {
        var header: [UInt8] = []
        header.reserveCapacity(headerSize)
        for byte in bytes.prefix(headerSize) { header.append(byte) }
        if header.count >= 1, header[0] != magic.0 { throw .badMagic }
        if header.count >= 2, header[1] != magic.1 { throw .badMagic }
        guard header.count == headerSize else { return nil }
        let tag = Int(header[5])
        let payload = Int(header[6]) << 24 | Int(header[7]) << 16 | Int(header[8]) << 8 | Int(header[9])
        guard tag <= maximumTag else { throw .tooLong("authentication tag", tag) }
        guard payload <= maximumPayload else { throw .tooLong("payload", payload) }
        return headerSize + tag + payload
    }
}
