import QuorumCore
import QuorumSecurity
import Testing

@Suite("Cluster key: sealed frames")
struct SealingTests {
    static let hexA = String(repeating: "ab", count: 32)
    static let hexB = String(repeating: "01", count: 32)
    static var ringA: ClusterKeyring { try! ClusterKeyring(parsing: "1 \(hexA)\n", path: "a") }
    static var ringB: ClusterKeyring { try! ClusterKeyring(parsing: "2 \(hexB)\n", path: "b") }
    static let identity = NodeIdentity(name: "SECRETNAME", instance: 7, address: "198.18.0.1", port: 6170, birth: 1)
    static let hello = Message.hello(Hello(cluster: "prod", identity: identity))

    @Test("key files: one or two `ID HEX` lines; anything else is a clear error")
    func keyFiles() throws {
        let two = try ClusterKeyring(parsing: "# rotation\n2 \(Self.hexB)\n1 \(Self.hexA)  # old\n", path: "k")
        #expect(two.active.id == 2 && two.accepted.map(\.id) == [2, 1])
        #expect(throws: ClusterKeyring.Failure.self) { try ClusterKeyring(parsing: "", path: "k") }
        #expect(throws: ClusterKeyring.Failure(description: "k:1: expected `ID HEX` (an id 0-255 and 64 hex digits); make a key with `quorumctl keygen`")) {
            try ClusterKeyring(parsing: "1 abcd\n", path: "k")
        }
        #expect(throws: ClusterKeyring.Failure.self) { try ClusterKeyring(parsing: "1 \(Self.hexA)\n1 \(Self.hexB)\n", path: "k") }
        #expect(throws: ClusterKeyring.Failure.self) { try ClusterKeyring(parsing: "1 \(Self.hexA)\n2 \(Self.hexB)\n3 \(Self.hexA)\n", path: "k") }
    }

    /// Runs the handshake of two link ends and returns them ready for bound frames.
    static func handshake(_ a: inout LinkSecurity, _ b: inout LinkSecurity) throws {
        // Both ends send their first hello as soon as the connection is up, before reading.
        let firstA = a.outbound(hello), firstB = b.outbound(hello)
        #expect(try b.inbound(firstA) == .message(hello, bound: false))
        #expect(try a.inbound(firstB) == .message(hello, bound: false))
        #expect(try b.inbound(a.outbound(hello)) == .message(hello, bound: true))
        #expect(try a.inbound(b.outbound(hello)) == .message(hello, bound: true))
    }

    @Test("a handshake binds both ends; bound frames then flow both ways")
    func handshakeAndTraffic() throws {
        var a = LinkSecurity(keyring: Self.ringA, cluster: "prod")
        var b = LinkSecurity(keyring: Self.ringA, cluster: "prod")
        try Self.handshake(&a, &b)
        #expect(try b.inbound(a.outbound(.bye)) == .message(.bye, bound: true))
        #expect(try a.inbound(b.outbound(.voteRequest(epoch: 3))) == .message(.voteRequest(epoch: 3), bound: true))
    }

    @Test("a versions frame may come unbound before the hello; an older end skips it; none may follow a bound frame")
    func versionsBeforeHello() throws {
        let versions = Message.versions(ProtocolRange(lowest: 1, highest: 2))
        let hello = Self.hello
        // Each end sends its versions and its first hello as soon as the connection is up.
        var a = LinkSecurity(keyring: Self.ringA, cluster: "prod")
        var old = LinkSecurity(keyring: Self.ringA, cluster: "prod", speaking: 1)
        let (va, ha) = (a.outbound(versions), a.outbound(hello))
        let ho = old.outbound(hello)
        #expect(try old.inbound(va) == .skip, "the older end skips the versions frame whole")
        #expect(try old.inbound(ha) == .message(hello, bound: false))
        #expect(try a.inbound(ho) == .message(hello, bound: false))
        #expect(try old.inbound(a.outbound(hello)) == .message(hello, bound: true))
        #expect(try a.inbound(old.outbound(hello)) == .message(hello, bound: true))

        var b = LinkSecurity(keyring: Self.ringA, cluster: "prod")
        var c = LinkSecurity(keyring: Self.ringA, cluster: "prod")
        let (vb, hb) = (b.outbound(versions), b.outbound(hello))
        let (vc, hc) = (c.outbound(versions), c.outbound(hello))
        #expect(try c.inbound(vb) == .message(versions, bound: false))
        #expect(try c.inbound(hb) == .message(hello, bound: false))
        #expect(try b.inbound(vc) == .message(versions, bound: false))
        #expect(try b.inbound(hc) == .message(hello, bound: false))
        #expect(try c.inbound(b.outbound(hello)) == .message(hello, bound: true))
        // Once a bound frame has arrived, an unbound versions frame is refused.
        let late = Sealing.seal(WireFormat.encode(versions), keyring: Self.ringA, cluster: "prod", senderNonce: b.ownNonce, counter: 99, boundTo: nil)
        #expect(throws: Sealing.Failure.unbound) { try c.inbound(late) }
    }

    @Test("another key, another cluster name, or a flipped bit does not open")
    func wrongKeyOrCluster() throws {
        var a = LinkSecurity(keyring: Self.ringA, cluster: "prod")
        var other = LinkSecurity(keyring: Self.ringB, cluster: "prod")
        var otherCluster = LinkSecurity(keyring: Self.ringA, cluster: "test")
        let frame = a.outbound(Self.hello)
        #expect(throws: Sealing.Failure.unknownKey(1)) { try other.inbound(frame) }
        #expect(throws: Sealing.Failure.authentication) { try otherCluster.inbound(frame) }
        for i in [3, 11, 30, frame.count - 1] {
            var b = LinkSecurity(keyring: Self.ringA, cluster: "prod")
            var damaged = frame
            damaged[i] ^= 0x40
            #expect(throws: (any Error).self) { try b.inbound(damaged) }
        }
    }

    @Test("a captured frame replayed on the same link, or on a new link after a restart, is refused")
    func replays() throws {
        var a = LinkSecurity(keyring: Self.ringA, cluster: "prod")
        var b = LinkSecurity(keyring: Self.ringA, cluster: "prod")
        try Self.handshake(&a, &b)
        let bye = a.outbound(.bye)
        #expect(try b.inbound(bye) == .message(.bye, bound: true))
        #expect(throws: Sealing.Failure.replayed(3)) { try b.inbound(bye) }
        // The receiver restarts: a new link end with a new nonce. The old goodbye does not open.
        var restarted = LinkSecurity(keyring: Self.ringA, cluster: "prod")
        #expect(throws: Sealing.Failure.authentication) { try restarted.inbound(bye) }
        // Only a hello may come unbound, and only first.
        var c = LinkSecurity(keyring: Self.ringA, cluster: "prod")
        var fresh = LinkSecurity(keyring: Self.ringA, cluster: "prod")
        #expect(throws: Sealing.Failure.unbound) { try fresh.inbound(c.outbound(.bye)) }
    }

    @Test("unsealed frames are refused by a node with a key, sealed ones by a node without")
    func mixedModes() throws {
        var keyed = LinkSecurity(keyring: Self.ringA, cluster: "prod")
        var plain = LinkSecurity(keyring: nil, cluster: "prod")
        #expect(throws: Sealing.Failure.notSealed) { try keyed.inbound(plain.outbound(Self.hello)) }
        #expect(throws: (any Error).self) { try plain.inbound(keyed.outbound(Self.hello)) }
    }

    @Test("sealed traffic shows no node name, cluster name or role in clear text")
    func noClearText() throws {
        var a = LinkSecurity(keyring: Self.ringA, cluster: "prod")
        let hb = Message.heartbeat(Heartbeat(epoch: 1, role: .master, holding: 1, following: MasterClaim(name: "SECRETNAME", instance: 7, epoch: 1), sequence: 1, echo: 0, membership: .bootstrap))
        for frame in [a.outbound(Self.hello), a.outbound(hb), DatagramSealing.seal(.announce(Announce(cluster: "prod", identity: Self.identity)), keyring: Self.ringA, cluster: "prod")] {
            let text = String(decoding: frame, as: UTF8.self)
            #expect(!text.contains("SECRETNAME") && !text.contains("prod") && !text.contains("198.18"))
        }
    }

    @Test("key rotation: a ring with two keys opens frames sealed with either")
    func rotation() throws {
        let old = Self.ringA
        let both = try ClusterKeyring(parsing: "2 \(Self.hexB)\n1 \(Self.hexA)\n", path: "k")
        let datagramOld = DatagramSealing.seal(.bye, keyring: old, cluster: "prod")
        let datagramNew = DatagramSealing.seal(.bye, keyring: both, cluster: "prod")
        #expect(try DatagramSealing.open(datagramOld, keyring: both, cluster: "prod") == .bye)
        #expect(try DatagramSealing.open(datagramNew, keyring: both, cluster: "prod") == .bye)
        #expect(throws: Sealing.Failure.unknownKey(2)) { try DatagramSealing.open(datagramNew, keyring: old, cluster: "prod") }
    }

    @Test("random bytes never trap the opener")
    func randomBytes() {
        var rng = SplitMix64(seed: 3)
        var a = LinkSecurity(keyring: Self.ringA, cluster: "prod")
        let valid = a.outbound(Self.hello)
        var failures = 0
        for i in 0..<5_000 {
            var bytes = valid
            if i % 2 == 0 {
                bytes = (0..<Int.random(in: 0...120, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            var b = LinkSecurity(keyring: Self.ringA, cluster: "prod")
            do { _ = try b.inbound(bytes) } catch { failures += 1 }
            _ = try? DatagramSealing.open(bytes, keyring: Self.ringA, cluster: "prod")
        }
        #expect(failures > 4_000)
    }
}
