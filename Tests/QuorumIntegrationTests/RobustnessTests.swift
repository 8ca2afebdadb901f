import Foundation
import QuorumControl
import Testing

/// Garbage on every input a node has, and sd_notify as systemd would see it.
extension IntegrationTests {
    @Suite("Robustness and systemd notify")
    struct Robustness {
        /// Random bytes of random length in `lengths`.
        static func randomBytes(_ lengths: ClosedRange<Int>, using rng: inout some RandomNumberGenerator) -> [UInt8] {
            (0..<Int.random(in: lengths, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }

        /// A frame header as the wire format has it ("QM", version 1, a type, flags, tag length,
        /// a big-endian payload length), followed by random bytes: garbage that gets past the
        /// first checks.
        static func plausibleFrame(using rng: inout some RandomNumberGenerator) -> [UInt8] {
            let payload = randomBytes(0...300, using: &rng)
            let tag = UInt8.random(in: 0...3, using: &rng) == 0 ? UInt8.random(in: 0...80, using: &rng) : 0
            let declared = UInt8.random(in: 0...3, using: &rng) == 0 ? UInt32.random(in: 0...UInt32.max, using: &rng) : UInt32(payload.count)
            var frame: [UInt8] = [0x51, 0x4D, UInt8.random(in: 0...2, using: &rng), UInt8.random(in: 0...12, using: &rng), 0, tag]
            frame += withUnsafeBytes(of: declared.bigEndian) { Array($0) }
            frame += randomBytes(Int(tag)...Int(tag), using: &rng)
            return frame + payload
        }

        @Test("Garbage datagrams, TCP bytes and control lines: every node keeps running, the master is unchanged")
        func garbage() async throws {
            try await withCluster { c in
                try await c.startInOrder(["A", "B", "C"])
                try await c.holds("the cluster has settled", for: .milliseconds(600)) {
                    await c.agree(master: "A", members: ["A", "B", "C"], clusterSize: 3, lost: 0)
                }
                let before = try await c.requireStatus("A")
                let hooksBefore = c.hookRuns().count
                var rng = SystemRandomNumberGenerator()

                // Discovery: 200 random datagrams (≤ 2000 bytes) to the broadcast and to 127.0.0.1,
                // then 100 with a plausible header.
                var datagrams = (0..<200).map { _ in Self.randomBytes(0...2000, using: &rng) }
                try sendDatagrams(datagrams, to: LocalCluster.broadcastAddress, port: c.broadcastPort)
                datagrams = (0..<200).map { _ in Self.randomBytes(0...2000, using: &rng) }
                try sendDatagrams(datagrams, to: "127.0.0.1", port: c.broadcastPort)
                datagrams = (0..<100).map { _ in Self.plausibleFrame(using: &rng) }
                try sendDatagrams(datagrams, to: LocalCluster.broadcastAddress, port: c.broadcastPort)

                // Peer port: random bytes, plausible frames, a forged BYE (type 8) without a handshake,
                // a header announcing a huge payload, and a connection that sends nothing.
                for name in ["A", "B"] {
                    let port = try c.node(name).port
                    var streams: [[UInt8]] = (0..<20).map { _ in Self.randomBytes(1...2000, using: &rng) }
                    streams += (0..<20).map { _ in (0..<5).flatMap { _ in Self.plausibleFrame(using: &rng) } }
                    streams.append([0x51, 0x4D, 1, 8, 0, 0, 0, 0, 0, 0])
                    streams.append([0x51, 0x4D, 1, 3, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF] + Self.randomBytes(100...100, using: &rng))
                    streams.append([])
                    for stream in streams {
                        _ = try await onThread { try sendOverTCP(stream, port: port) }
                    }
                }

                // Control socket: lines that are not requests.
                var lines: [[UInt8]] = [
                    Array("garbage\n".utf8), Array("{}\n".utf8), Array("{\"command\":\"nope\"}\n".utf8),
                    Array("[1,2,3]\n".utf8), Array("{\"command\":42}\n".utf8), [0xFF, 0xFE, 0x00, 0x0A],
                    Array("{\"command\":\"forget\",\"peer\":\"../../etc/passwd\"}\n".utf8),
                    Array("{\"command\":\"forget\"}\n".utf8),
                    Array("\n".utf8),
                ]
                let refused = lines.count
                lines.append(Array(String(repeating: "x", count: 5000).utf8) + [0x0A])
                lines.append(Self.randomBytes(1...2000, using: &rng))
                lines.append([])
                for name in ["A", "B", "C"] {
                    let socket = try c.node(name).socketPath
                    for (i, line) in lines.enumerated() {
                        let answer = try await onThread { try unixStreamExchange(path: socket, send: line) }
                        if i < refused {
                            let response = try? ControlResponse.parse(answer)
                            #expect(
                                response.map { !$0.isOK } == true,
                                "\(name) refuses \(String(decoding: line, as: UTF8.self).debugDescription) with an error: \(String(decoding: answer, as: UTF8.self).debugDescription)")
                        }
                    }
                }

                // Afterwards: all running, same master, same epoch, nobody lost or added.
                try await c.holds("the cluster is unchanged", for: .seconds(1)) {
                    await c.agree(master: "A", members: ["A", "B", "C"], clusterSize: 3, lost: 0)
                }
                for name in ["A", "B", "C"] {
                    #expect(c.isRunning(name), "\(name) still runs")
                    let s = try await c.requireStatus(name)
                    #expect(s.epoch == before.epoch)
                    #expect(try await c.requirePeerStates(name).count == 2, "\(name) knows exactly the two real peers")
                }
                #expect(c.hookRuns().count == hooksBefore, "no role changed: \(c.hookRuns())")
            }
        }

        /// The `KEY=value` lines of sd_notify messages.
        static func fields(_ messages: [String]) -> [String] {
            messages.flatMap { $0.split(separator: "\n").map(String.init) }
        }

        @Test("NOTIFY_SOCKET receives READY=1, a STATUS= line with the role, and STOPPING=1 after SIGTERM")
        func systemdNotify() async throws {
            try await withCluster { c in
                let notify = try NotifyListener(path: c.directory + "/notify.sock")
                try c.start("A", environment: ["NOTIFY_SOCKET": notify.path])
                var received: [String] = []
                received += try await onThread {
                    notify.collect(timeout: .seconds(10)) { messages in
                        let f = Self.fields(messages)
                        return f.contains("READY=1") && f.contains { $0.hasPrefix("STATUS=") && $0.contains("master") }
                    }
                }
                #expect(Self.fields(received).contains("READY=1"), "got: \(received)")
                #expect(
                    Self.fields(received).contains { $0.hasPrefix("STATUS=") && $0.contains("master") },
                    "a STATUS= line names the role: \(received)")
                try await c.waitUntil("A alone is master") {
                    await c.agree(master: "A", members: ["A"], clusterSize: 1)
                }

                try c.stop("A")
                let after = try await onThread {
                    notify.collect(timeout: .seconds(10)) { Self.fields($0).contains("STOPPING=1") }
                }
                #expect(Self.fields(after).contains("STOPPING=1"), "got: \(after)")
                #expect(try await c.waitForExit("A") == .exited(0))
            }
        }
    }
}
