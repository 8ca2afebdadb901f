/// The byte-level writer and reader the wire format is built from: big-endian integers,
/// length-prefixed text, names and identities. Every read is bounded and throws, never traps.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }
    mutating func u32(_ v: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }
    mutating func u64(_ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    /// A flag byte (0 absent, 1 present), then the value when present.
    mutating func optional<T>(_ v: T?, _ write: (inout ByteWriter, T) -> Void) {
        if let v {
            u8(1)
            write(&self, v)
        } else {
            u8(0)
        }
    }
    mutating func optionalU64(_ v: UInt64?) { optional(v) { $0.u64($1) } }
    /// A string of at most 255 bytes; longer ones are cut (callers validate names first).
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8.prefix(255))
        u8(UInt8(utf8.count))
        bytes.append(contentsOf: utf8)
    }
    /// Text cut at a character boundary to at most `maximum` bytes (a cut in the middle of
    /// a character would make the receiver refuse the frame).
    mutating func text(_ s: String, maximum: Int) {
        var cut = Substring(s)
        while cut.utf8.count > maximum { cut = cut.dropLast() }
        string(String(cut))
    }
    mutating func optionalString(_ s: String?) { optional(s) { $0.string($1) } }
    /// A duration in whole milliseconds, up to about 49 days.
    mutating func milliseconds(_ d: Duration) {
        u32(UInt32(clamping: max(0, d.nanosecondsClamped / 1_000_000)))
    }
    mutating func identity(_ id: NodeIdentity) {
        string(id.name)
        u64(id.instance)
        string(id.address)
        u16(id.port)
        i64(id.birth)
    }
}

struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }
    var remaining: Int { bytes.count - offset }

    mutating func take(_ n: Int) throws(WireError) -> ArraySlice<UInt8> {
        guard n >= 0, remaining >= n else { throw .truncated }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }
    mutating func u8() throws(WireError) -> UInt8 { try take(1).first! }
    mutating func u16() throws(WireError) -> UInt16 {
        let s = try take(2)
        return UInt16(s[s.startIndex]) << 8 | UInt16(s[s.startIndex + 1])
    }
    mutating func u32() throws(WireError) -> UInt32 {
        var v: UInt32 = 0
        for b in try take(4) { v = v << 8 | UInt32(b) }
        return v
    }
    mutating func u64() throws(WireError) -> UInt64 {
        var v: UInt64 = 0
        for b in try take(8) { v = v << 8 | UInt64(b) }
        return v
    }
    mutating func i64() throws(WireError) -> Int64 { Int64(bitPattern: try u64()) }
    /// The flag byte of an optional value: whether the value follows.
    mutating func present() throws(WireError) -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        case let other: throw .badValue("optional flag", Int(other))
        }
    }
    mutating func optionalU64() throws(WireError) -> UInt64? {
        try present() ? try u64() : nil
    }
    mutating func text(maximum: Int) throws(WireError) -> String {
        let n = Int(try u8())
        guard n <= maximum else { throw .tooLong("text", n) }
        let slice = try take(n)
        guard let s = String(validating: slice, as: UTF8.self) else { throw .badText }
        return s
    }
    mutating func name() throws(WireError) -> String {
        let s = try text(maximum: Names.maximumLength)
        guard Names.isValid(s) else { throw .badName }
        return s
    }
    mutating func optionalName() throws(WireError) -> String? {
        try present() ? try name() : nil
    }
    mutating func milliseconds() throws(WireError) -> Duration { .milliseconds(Int64(try u32())) }
    mutating func identity() throws(WireError) -> NodeIdentity {
        let name = try name()
        let instance = try u64()
        let address = try text(maximum: WireFormat.maximumAddressLength)
        let port = try u16()
        let birth = try i64()
        return NodeIdentity(name: name, instance: instance, address: address, port: port, birth: birth)
    }
    mutating func identities(count: Int) throws(WireError) -> [NodeIdentity] {
        var list: [NodeIdentity] = []
        list.reserveCapacity(count)
        for _ in 0..<count { list.append(try identity()) }
        return list
    }
}

/// Why bytes were not a valid frame. The connection that sent them is closed.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    case badMagic
    case badVersion(UInt8)
    case unknownType(UInt8)
    case truncated
    case tooLong(String, Int)
    case badValue(String, Int)
    case badName
    case badText
    case trailingBytes(Int)

    public var description: String {
        switch self {
        case .badMagic: "not a quorum frame (bad magic number)"
        case .badVersion(let v): "invalid format version \(v)"
        case .unknownType(let t): "unknown message type \(t)"
        case .truncated: "truncated frame"
        case .tooLong(let what, let n): "\(what) too long (\(n) bytes)"
        case .badValue(let what, let v): "invalid \(what) \(v)"
        case .badName: "invalid node or cluster name"
        case .badText: "text is not valid UTF-8"
        case .trailingBytes(let n): "\(n) unexpected bytes after the message"
        }
    }
}
