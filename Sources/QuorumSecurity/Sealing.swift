import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import QuorumCore

/// The cluster key: one or two 256-bit keys, each with a one-byte id. The first is used to
/// seal; every key in the ring is accepted when opening, so a key can be rotated with no
/// outage (see docs/security.md).
///
/// File format (`quorumctl keygen` writes it): one key per line, `ID HEX`, where ID is
/// 0–255 and HEX is 64 hexadecimal digits; `#` starts a comment. One or two keys.
public struct ClusterKeyring: Sendable {
    public struct Key: Sendable {
        public var id: UInt8
        public var key: SymmetricKey
    }

    public let active: Key
    public let accepted: [Key]

    public struct Failure: Error, CustomStringConvertible, Equatable {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public init(keys: [Key]) throws(Failure) {
        guard let first = keys.first else { throw Failure(description: "no key") }
        guard keys.count <= 2 else { throw Failure(description: "at most two keys (the active one and one being rotated)") }
        guard Set(keys.map(\.id)).count == keys.count else { throw Failure(description: "two keys with the same id") }
        active = first
        accepted = keys
    }

    /// Parses a key file's text. `path` only names the file in errors.
    public init(parsing text: String, path: String) throws(Failure) {
        var keys: [Key] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            guard fields.count == 2, let id = UInt8(fields[0]), let bytes = Self.hex(fields[1]), bytes.count == 32 else {
                throw Failure(description: "\(path):\(index + 1): expected `ID HEX` (an id 0-255 and 64 hex digits); make a key with `quorumctl keygen`")
            }
            keys.append(Key(id: id, key: SymmetricKey(data: bytes)))
        }
        do {
            try self.init(keys: keys)
        } catch {
            throw Failure(description: "\(path): \(error.description)")
        }
    }

    func key(id: UInt8) -> SymmetricKey? { accepted.first { $0.id == id }?.key }

    static func hex<S: StringProtocol>(_ s: S) -> [UInt8]? {
        let digits = Array(s.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let hi = nibble(digits[i]), let lo = nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
}

/// Seals and opens frames with the cluster key (ChaCha20-Poly1305).
///
/// A sealed frame keeps the plain header's magic, version and type, sets flag bit 0
/// (sealed) and, for frames bound to a link, bit 1; its authentication-tag field holds the
/// key id, the 12-byte random nonce and the 16-byte tag; its payload is the ciphertext of
/// `sender's link nonce (16) | counter (8) | plain payload`. The associated data is a label,
/// the cluster name, the header's first five bytes and the *receiver's* link nonce for bound
/// frames (zeros otherwise). So a frame only opens with the cluster's key, in the cluster it
/// was sealed for, and a bound frame only on the link it was sealed for: a frame captured on
/// one link and replayed on another — also after the receiver restarted and made a new
/// nonce — fails. Within a link the counter must grow, so a frame cannot be replayed twice.
public enum Sealing {
    public static let sealedFlag: UInt8 = 0x01
    public static let boundFlag: UInt8 = 0x02
    public static let linkNonceSize = 16
    static let tagFieldSize = 1 + 12 + 16
    static let label = Array("quorum-aead-v1".utf8)

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case notSealed
        case unknownKey(UInt8)
        case malformed(String)
        case authentication
        case unbound
        case replayed(UInt64)

        public var description: String {
            switch self {
            case .notSealed: "an unsealed frame (the sender has no cluster key)"
            case .unknownKey(let id): "sealed with unknown key id \(id)"
            case .malformed(let why): "malformed sealed frame: \(why)"
            case .authentication: "authentication failed (another key or cluster, or a forged or damaged frame)"
            case .unbound: "a frame not bound to this link"
            case .replayed(let n): "a replayed frame (counter \(n))"
            }
        }
    }

    /// A whole opened frame: the plain frame (flags and tag cleared) and what came with it.
    public struct Opened: Sendable {
        public var plainFrame: [UInt8]
        public var senderNonce: [UInt8]
        public var counter: UInt64
        public var bound: Bool
    }

    /// Seals a plain frame made by `WireFormat.encode`.
    public static func seal(_ plainFrame: [UInt8], keyring: ClusterKeyring, cluster: String, senderNonce: [UInt8], counter: UInt64, boundTo receiverNonce: [UInt8]?) -> [UInt8] {
        precondition(plainFrame.count >= WireFormat.headerSize && plainFrame[5] == 0, "seal a plain frame")
        precondition(senderNonce.count == linkNonceSize && (receiverNonce?.count ?? linkNonceSize) == linkNonceSize)
        var header = Array(plainFrame[0..<4])
        header.append(sealedFlag | (receiverNonce == nil ? 0 : boundFlag))
        var plaintext = senderNonce
        for shift in stride(from: 56, through: 0, by: -8) { plaintext.append(UInt8(truncatingIfNeeded: counter >> UInt64(shift))) }
        plaintext += plainFrame[WireFormat.headerSize...]
        let aad = associatedData(header: header, cluster: cluster, binding: receiverNonce)
        // A random 96-bit nonce per frame: no coordination between links or restarts is needed.
        let box = try! ChaChaPoly.seal(plaintext, using: keyring.active.key, nonce: ChaChaPoly.Nonce(), authenticating: aad)
        var frame = header
        frame.append(UInt8(tagFieldSize))
        let n = UInt32(box.ciphertext.count)
        frame += [UInt8(truncatingIfNeeded: n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
        frame.append(keyring.active.id)
        frame += Array(box.nonce)
        frame += Array(box.tag)
        frame += Array(box.ciphertext)
        return frame
    }

    /// Opens one whole sealed frame. `receiverNonce` is this link's own nonce (nil for datagrams).
    public static func open(_ frame: [UInt8], keyring: ClusterKeyring, cluster: String, receiverNonce: [UInt8]?) throws(Failure) -> Opened {
        guard frame.count >= WireFormat.headerSize else { throw .malformed("short frame") }
        let flags = frame[4]
        guard flags & sealedFlag != 0 else { throw .notSealed }
        guard flags & ~(sealedFlag | boundFlag) == 0 else { throw .malformed("unknown flags \(flags)") }
        guard Int(frame[5]) == tagFieldSize else { throw .malformed("tag field of \(frame[5]) bytes") }
        guard (try? WireFormat.frameLength(frame)) == frame.count else { throw .malformed("length mismatch") }
        let bound = flags & boundFlag != 0
        if bound && receiverNonce == nil { throw .unbound }
        guard let key = keyring.key(id: frame[10]) else { throw .unknownKey(frame[10]) }
        let t = WireFormat.headerSize
        let header = Array(frame[0..<5])
        let aad = associatedData(header: header, cluster: cluster, binding: bound ? receiverNonce : nil)
        let plaintext: Data
        do {
            let box = try ChaChaPoly.SealedBox(
                nonce: ChaChaPoly.Nonce(data: frame[(t + 1)..<(t + 13)]), ciphertext: frame[(t + 29)...], tag: frame[(t + 13)..<(t + 29)])
            plaintext = try ChaChaPoly.open(box, using: key, authenticating: aad)
        } catch {
            throw .authentication
        }
        let bytes = Array(plaintext)
        guard bytes.count >= linkNonceSize + 8 else { throw .malformed("short plaintext") }
        let senderNonce = Array(bytes[0..<linkNonceSize])
        var counter: UInt64 = 0
        for b in bytes[linkNonceSize..<(linkNonceSize + 8)] { counter = counter << 8 | UInt64(b) }
        let payload = bytes[(linkNonceSize + 8)...]
        var plain = Array(frame[0..<4])
        plain += [0, 0]
        let p = UInt32(payload.count)
        plain += [UInt8(truncatingIfNeeded: p >> 24), UInt8(truncatingIfNeeded: p >> 16), UInt8(truncatingIfNeeded: p >> 8), UInt8(truncatingIfNeeded: p)]
        plain += payload
        return Opened(plainFrame: plain, senderNonce: senderNonce, counter: counter, bound: bound)
    }

    static func associatedData(header: [UInt8], cluster: String, binding: [UInt8]?) -> [UInt8] {
        var aad = label
        let name = Array(cluster.utf8)
        aad.append(UInt8(clamping: name.count))
        aad += name
        aad += header
        aad += binding ?? [UInt8](repeating: 0, count: linkNonceSize)
        return aad
    }

    /// 16 random bytes from the system's generator.
    public static func newLinkNonce() -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<linkNonceSize).map { _ in UInt8.random(in: 0...255, using: &g) }
    }
}

/// The security state of one peer link: its own nonce, the peer's, and the counters.
///
/// Handshake with a key: each side sends an unbound `hello` carrying its link nonce (after
/// an unbound `versions`, from protocol 2 on), then, once it knows the peer's nonce, a
/// `hello` bound to it. A side counts the link as up only when the peer's bound `hello`
/// opens with its own nonce: proof that the peer is live now, not a recording. Every later
/// frame must be bound, with a growing counter.
public struct LinkSecurity: Sendable {
    public let keyring: ClusterKeyring?
    public let cluster: String
    /// The highest protocol version this side speaks: newer frames are skipped.
    public let speaking: UInt8
    public let ownNonce: [UInt8]
    public private(set) var peerNonce: [UInt8]?
    private var sendCounter: UInt64 = 0
    private var receiveCounter: UInt64 = 0

    public init(keyring: ClusterKeyring?, cluster: String, speaking: UInt8 = WireFormat.version) {
        self.keyring = keyring
        self.cluster = cluster
        self.speaking = speaking
        ownNonce = Sealing.newLinkNonce()
    }

    public var isSealed: Bool { keyring != nil }

    /// Frames out: plain without a key; sealed (bound once the peer's nonce is known) with one.
    public mutating func outbound(_ message: Message) -> [UInt8] {
        let plain = WireFormat.encode(message)
        guard let keyring else { return plain }
        sendCounter += 1
        return Sealing.seal(plain, keyring: keyring, cluster: cluster, senderNonce: ownNonce, counter: sendCounter, boundTo: peerNonce)
    }

    public enum Inbound: Sendable, Equatable {
        case message(Message, bound: Bool)
        case skip
    }

    /// One whole frame in (as split by its header's lengths).
    public mutating func inbound(_ frame: [UInt8]) throws -> Inbound {
        guard let keyring else {
            if frame.count > 4, frame[4] & Sealing.sealedFlag != 0 { throw Sealing.Failure.malformed("a sealed frame, but this node has no cluster key") }
            return try decode(frame)
        }
        if frame.count > 2, frame[2] > speaking { return try decode(frame) }  // a newer version: skipped
        let opened = try Sealing.open(frame, keyring: keyring, cluster: cluster, receiverNonce: ownNonce)
        if let known = peerNonce {
            guard opened.senderNonce == known else { throw Sealing.Failure.unbound }
        }
        if opened.bound {
            guard opened.counter > receiveCounter else { throw Sealing.Failure.replayed(opened.counter) }
            receiveCounter = opened.counter
        }
        if peerNonce == nil { peerNonce = opened.senderNonce }
        switch try decode(opened.plainFrame) {
        case .message(let m, _):
            // Only a hello (and the versions before it) may come unbound, before any bound frame.
            if !opened.bound {
                switch m {
                case .hello, .versions: guard receiveCounter == 0 else { throw Sealing.Failure.unbound }
                default: throw Sealing.Failure.unbound
                }
            }
            return .message(m, bound: opened.bound)
        case .skip:
            return .skip
        }
    }

    private func decode(_ frame: [UInt8]) throws -> Inbound {
        switch try WireFormat.decode(frame, speaking: speaking) {
        case .message(let m, let consumed):
            guard consumed == frame.count else { throw WireError.trailingBytes(frame.count - consumed) }
            return .message(m, bound: false)
        case .needMoreData: throw WireError.truncated
        case .unsupportedVersion: return .skip
        }
    }
}

/// Discovery datagrams: sealed, unbound (a replayed announcement only makes nodes try to
/// connect, and the link handshake then needs the live node).
public enum DatagramSealing {
    public static func seal(_ message: Message, keyring: ClusterKeyring?, cluster: String) -> [UInt8] {
        let plain = WireFormat.encode(message)
        guard let keyring else { return plain }
        return Sealing.seal(plain, keyring: keyring, cluster: cluster, senderNonce: Sealing.newLinkNonce(), counter: 0, boundTo: nil)
    }

    public static func open(_ bytes: [UInt8], keyring: ClusterKeyring?, cluster: String) throws -> Message? {
        guard bytes.count <= WireFormat.maximumDatagram else { throw WireError.tooLong("datagram", bytes.count) }
        guard let keyring else {
            if bytes.count > 4, bytes[0] == WireFormat.magic.0, bytes[4] & Sealing.sealedFlag != 0 {
                throw Sealing.Failure.malformed("a sealed datagram, but this node has no cluster key")
            }
            return try WireFormat.decodeDatagram(bytes)
        }
        if bytes.count > 2, bytes[0] == WireFormat.magic.0, bytes[2] > WireFormat.version { return nil }
        let opened = try Sealing.open(bytes, keyring: keyring, cluster: cluster, receiverNonce: nil)
        return try WireFormat.decodeDatagram(opened.plainFrame)
    }
}

extension ClusterKeyring {
    /// The same keys with the same ids, in the same order (a reload that changes nothing).
    public func holdsSameKeys(as other: ClusterKeyring) -> Bool {
        guard accepted.count == other.accepted.count else { return false }
        return zip(accepted, other.accepted).allSatisfy { a, b in
            a.id == b.id && a.key.withUnsafeBytes { Array($0) } == b.key.withUnsafeBytes { Array($0) }
        }
    }
}
