import Foundation
import QuorumControl
import QuorumCore
import QuorumSecurity
import Testing

/// The cluster key and the control socket's access check, with real processes.
extension IntegrationTests {
    @Suite("Security")
    struct Security {
        static let keyA = "1 " + String(repeating: "3c", count: 32) + "\n"
        static let keyB = "2 " + String(repeating: "c3", count: 32) + "\n"

        /// Writes key A (0600) into the cluster's directory; the arguments that make a node use it.
        static func keyAArguments(_ c: LocalCluster) throws -> [String] {
            try c.writeFile(c.directory + "/a.key", keyA, mode: 0o600)
            return ["--key-file", c.directory + "/a.key"]
        }

        @Test("Nodes without the cluster key, or with another key, cannot join; a bad key file is exit 2")
        func keyedClusterIsClosed() async throws {
            try await withCluster { c in
                let keyA = try Self.keyAArguments(c)
                try c.writeFile(c.directory + "/b.key", Self.keyB, mode: 0o600)
                try c.writeFile(c.directory + "/open.key", Self.keyA, mode: 0o644)
                try await c.startInOrder(["A", "B"], keyA)
                try c.start("X")
                try c.start("Y", ["--key-file", c.directory + "/b.key"])
                // X and Y hear A and B's sealed announcements (and A and B theirs) but never link.
                try await c.waitUntil("X and Y are each a cluster of one", timeout: .seconds(10)) {
                    let x = await c.status("X")?.master
                    let y = await c.status("Y")?.master
                    return x == "X" && y == "Y"
                }
                try await c.holds("A and B stay a cluster of two", for: .seconds(2)) {
                    await c.agree(master: "A", members: ["A", "B"], clusterSize: 2, lost: 0)
                }
                #expect(c.log("A").contains("dropped frame"), "rejected traffic is logged")
                // A key file readable by others is refused before anything is sent.
                _ = try c.start("Z", ["--key-file", c.directory + "/open.key"])
                let status = try await c.waitForExit("Z")
                #expect(status == .exited(2))
            }
        }

        @Test("Frames sealed with another key, or captured on another link and replayed, change nothing")
        func forgedAndReplayedFrames() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C"], try Self.keyAArguments(c))
                let epoch = try #require(await c.status("B")).epoch
                let right = try ClusterKeyring(parsing: Self.keyA, path: "a")
                let wrong = try ClusterKeyring(parsing: Self.keyB, path: "b")
                let master = try c.node("A")
                let impostor = NodeIdentity(name: "B", instance: 42, address: "127.0.0.1", port: 1, birth: 0)
                for ring in [wrong, right] {
                    // An attacker's link end, and a "captured" end whose frames were bound to another receiver.
                    var attacker = LinkSecurity(keyring: ring, cluster: "quorum")
                    var elsewhere = LinkSecurity(keyring: ring, cluster: "quorum")
                    var otherReceiver = LinkSecurity(keyring: ring, cluster: "quorum")
                    _ = try otherReceiver.inbound(elsewhere.outbound(.hello(Hello(cluster: "quorum", identity: impostor))))
                    _ = try elsewhere.inbound(otherReceiver.outbound(.hello(Hello(cluster: "quorum", identity: impostor))))
                    let capturedBye = elsewhere.outbound(.bye)
                    let capturedVote = elsewhere.outbound(.voteRequest(epoch: epoch + 5))
                    var bytes = attacker.outbound(.hello(Hello(cluster: "quorum", identity: impostor)))
                    bytes += capturedBye + capturedVote
                    _ = try? sendOverTCP(bytes, port: master.port)
                    try sendDatagrams([DatagramSealing.seal(.bye, keyring: ring, cluster: "quorum")], to: "127.255.255.255", port: c.broadcastPort)
                }
                try await c.holds("nothing changed", for: .seconds(2)) {
                    await c.agree(master: "A", members: ["A", "B", "C"], clusterSize: 3, lost: 0)
                }
                #expect(try #require(await c.status("C")).epoch == epoch)
                #expect(await c.peerStates("A")?["B"] == .connected)
            }
        }

        /// TCP payloads of a pcap file (LINKTYPE_EN10MB or LINUX_SLL2 on lo), in capture order,
        /// keyed by (source port, destination port).
        static func tcpPayloads(pcap path: String) throws -> [(src: UInt16, dst: UInt16, bytes: [UInt8])] {
            let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            guard data.count >= 24 else { return [] }
            func u32(_ o: Int) -> Int { Int(data[o]) | Int(data[o + 1]) << 8 | Int(data[o + 2]) << 16 | Int(data[o + 3]) << 24 }
            let linkType = u32(20)
            let linkHeader = linkType == 1 ? 14 : (linkType == 276 ? 20 : 16)
            var out: [(UInt16, UInt16, [UInt8])] = []
            var o = 24
            while o + 16 <= data.count {
                let length = u32(o + 8)
                let start = o + 16
                o = start + length
                guard o <= data.count, length > linkHeader + 20 else { continue }
                let ip = start + linkHeader
                guard data[ip] >> 4 == 4, data[ip + 9] == 6 else { continue }
                let ipHeader = Int(data[ip] & 0x0F) * 4
                let total = Int(data[ip + 2]) << 8 | Int(data[ip + 3])
                let tcp = ip + ipHeader
                guard tcp + 20 <= o else { continue }
                let src = UInt16(data[tcp]) << 8 | UInt16(data[tcp + 1])
                let dst = UInt16(data[tcp + 2]) << 8 | UInt16(data[tcp + 3])
                let payload = tcp + Int(data[tcp + 12] >> 4) * 4
                let end = min(ip + total, o)
                if payload < end { out.append((src, dst, Array(data[payload..<end]))) }
            }
            return out
        }

        static func frameTypes(_ stream: [UInt8]) -> [UInt8] {
            var types: [UInt8] = []
            var rest = stream[...]
            while let n = try? WireFormat.frameLength(rest), n <= rest.count {
                types.append(rest[rest.startIndex + 3])
                rest = rest.dropFirst(n)
            }
            return types
        }

        @Test("A goodbye captured from the wire and replayed later does not remove the live node")
        func replayedCapturedGoodbye() async throws {
            guard getuid() == 0, access("/usr/bin/tcpdump", X_OK) == 0 || access("/usr/sbin/tcpdump", X_OK) == 0 else {
                print("skipped: needs root and tcpdump")
                return
            }
            let tcpdump = access("/usr/bin/tcpdump", X_OK) == 0 ? "/usr/bin/tcpdump" : "/usr/sbin/tcpdump"
            try await withCluster { c in
                let keyA = try Self.keyAArguments(c)
                let a = try c.prepare("A"), cNode = try c.prepare("C")
                let pcap = c.directory + "/capture.pcap"
                // Capture the traffic between A and C (a cluster of two, so C->A is: to A's port, or from C's).
                let capture = try spawnChild(
                    executable: tcpdump,
                    arguments: ["-i", "lo", "--immediate-mode", "-U", "-w", pcap, "tcp and (port \(a.port) or port \(cNode.port))"],
                    environment: ["PATH": "/usr/sbin:/usr/bin:/bin"], output: .combined(c.directory + "/tcpdump.log"))
                defer { kill(capture, SIGKILL); _ = waitForChild(capture, timeout: .seconds(2)) }
                try await c.waitUntil("tcpdump listens", timeout: .seconds(5)) {
                    (try? String(contentsOfFile: c.directory + "/tcpdump.log", encoding: .utf8))?.contains("listening") == true
                }
                try await c.startInOrder(["A", "C"], keyA)
                try c.stop("C")  // a graceful leave: C says bye to A
                #expect(try await c.waitForExit("C") == .exited(0))
                try await c.waitUntil("A lists C as dispatched") { await c.peerStates("A")?["C"] == .dispatched }
                kill(capture, SIGINT)
                _ = waitForChild(capture, timeout: .seconds(5))
                // C -> A streams, with the frame types they carried.
                var streams: [String: [UInt8]] = [:]
                for segment in try Self.tcpPayloads(pcap: pcap) where segment.dst == a.port || segment.src == cNode.port {
                    streams["\(segment.src)>\(segment.dst)", default: []] += segment.bytes
                }
                let withBye = streams.values.filter { Self.frameTypes($0).contains(8) }
                let summary = streams.map { "\($0.key): \($0.value.count) bytes, types \(Self.frameTypes($0.value))" }.joined(separator: "; ")
                let captured = try #require(withBye.first, "the capture holds C's sealed goodbye (streams: \(summary))")
                // C comes back; the captured stream (its hellos, heartbeats and the bye) is replayed to A.
                try await c.restart("C")
                try await c.waitUntil("C is back") { await c.agree(master: "A", members: ["A", "C"], clusterSize: 2, lost: 0) }
                _ = try? await onThread { try sendOverTCP(captured, port: a.port) }
                try await c.holds("A still has C connected", for: .seconds(2)) {
                    await c.agree(master: "A", members: ["A", "C"], clusterSize: 2, lost: 0)
                }
            }
        }

        @Test("A flood of datagrams sealed with another key leaves heartbeats on time and the master unchanged")
        func floodOfForgedDatagrams() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C"], try Self.keyAArguments(c))
                let epoch = try #require(await c.status("A")).epoch
                let wrong = try ClusterKeyring(parsing: Self.keyB, path: "b")
                let port = c.broadcastPort
                // 20 bursts of 250 sealed datagrams (bounded: 5,000), while the cluster is watched.
                async let flood: Void = onThread {
                    let forged = Message.announce(Announce(cluster: "quorum", identity: NodeIdentity(name: "Z", instance: 9, address: "127.0.0.1", port: 1, birth: 0)))
                    for _ in 0..<20 {
                        let burst = (0..<250).map { _ in DatagramSealing.seal(forged, keyring: wrong, cluster: "quorum") }
                        try sendDatagrams(burst, to: "127.255.255.255", port: port)
                    }
                }
                // No peer falls silent for 600 ms (heartbeats on time), nothing changes.
                try await c.holds("the cluster is unchanged during the flood", for: .seconds(2)) {
                    await c.agree(master: "A", members: ["A", "B", "C"], clusterSize: 3, lost: 0)
                }
                try await flood
                #expect(try #require(await c.status("B")).epoch == epoch)
            }
        }

        @Test("A user who is not root and not in the node's group is refused by the control socket")
        func controlSocketRefusesStrangers() async throws {
            guard getuid() == 0, access("/usr/sbin/runuser", X_OK) == 0 || access("/sbin/runuser", X_OK) == 0 else {
                print("skipped: needs root and runuser")
                return
            }
            try await withCluster { c in
                try await c.startInOrder(["A"])
                let node = try c.node("A")
                // Loosen what the kernel checks, so the request reaches quorumd's own check.
                chmod(c.directory, 0o755)
                chmod(node.socketPath, 0o666)
                let runuser = access("/usr/sbin/runuser", X_OK) == 0 ? "/usr/sbin/runuser" : "/sbin/runuser"
                let run = try await runCommand(
                    runuser, ["-u", "nobody", "--", c.quorumctl, "--socket", node.socketPath, "leave"],
                    environment: ["PATH": "/usr/bin:/bin"], scratchDirectory: "/tmp", timeout: .seconds(10))
                #expect(run.status == .exited(1), "\(run)")
                #expect(run.standardError.contains("permission denied"), "\(run)")
                #expect(c.isRunning("A"))
                #expect(c.log("A").contains("control request refused"))
                #expect(await c.status("A")?.role == "master", "root still may ask")
            }
        }
    }
}
