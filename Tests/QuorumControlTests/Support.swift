#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QuorumControl
import QuorumControlServer

/// A fresh directory under /tmp (short, so socket paths stay under the 108-byte limit).
func makeTemporaryDirectory() throws -> String {
    var template = Array("/tmp/quorum-test-XXXXXX".utf8CString)
    guard let result = mkdtemp(&template) else {
        throw TestFailure("mkdtemp failed: \(String(cString: strerror(errno)))")
    }
    return String(cString: result)
}

func removeDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs blocking work (the blocking client, a child process) on its own thread, so it never
/// occupies one of the few threads of Swift's cooperative pool that the server's handler needs.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.start()
    }
}

/// Binds a plain listening Unix socket at `path` (a stand-in node for the locator tests) and
/// returns its descriptor; close it to stop listening (the file stays).
func bindPlainSocket(at path: String) throws -> Int32 {
    #if canImport(Glibc)
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_UNIX, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw TestFailure("socket failed") }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard bound == 0, listen(fd, 8) == 0 else {
        close(fd)
        throw TestFailure("bind \(path) failed: \(String(cString: strerror(errno)))")
    }
    return fd
}

/// Connects to `path`, writes `bytes` (optionally half-closing), and reads until the server closes.
func rawExchange(path: String, send bytes: [UInt8], halfClose: Bool = false, timeoutSeconds: Int = 5) throws -> [UInt8] {
    #if canImport(Glibc)
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_UNIX, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw TestFailure("socket failed") }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let pathBytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: pathBytes)
        raw[pathBytes.count] = 0
    }
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard connected == 0 else { throw TestFailure("connect failed: \(String(cString: strerror(errno)))") }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var offset = 0
    while offset < bytes.count {
        #if canImport(Glibc)
        let flags = Int32(MSG_NOSIGNAL)
        #else
        let flags: Int32 = 0
        #endif
        let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, flags) }
        if n <= 0 { break }  // the server may close early on an oversized line; read what it said
        offset += n
    }
    if halfClose { shutdown(fd, Int32(SHUT_WR)) }
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 { received += chunk[0..<n]; continue }
        if n == 0 { return received }
        if errno == EINTR { continue }
        if errno == ECONNRESET { return received }
        throw TestFailure("recv failed: \(String(cString: strerror(errno)))")
    }
}

/// Runs a `ControlServer` on a socket in a temporary directory for the duration of `body`.
func withServer<T: Sendable>(
    configuration: ControlServer.Configuration = .init(),
    handler: @escaping ControlServer.Handler,
    _ body: @Sendable (_ socketPath: String) async throws -> T
) async throws -> T {
    let directory = try makeTemporaryDirectory()
    defer { removeDirectory(directory) }
    let path = directory + "/control.sock"
    let server = try await ControlServer.bind(socketPath: path, configuration: configuration, handler: handler)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        do {
            let result = try await body(path)
            group.cancelAll()
            try await group.waitForAll()
            return result
        } catch {
            group.cancelAll()
            try? await group.waitForAll()
            throw error
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

enum Fixtures {
    static let quorateStatus = StatusReport(
        name: "B", cluster: "quorum", role: "slave", master: "A", quorate: true, epoch: 7,
        clusterSize: 3, majority: 2, connected: 2, lost: 0, metric: "age",
        masterAddress: "10.0.0.1:6170", address: "10.0.0.2", port: 6170, birth: 1_700_000_000_123,
        instance: "1f2e3d4c5b6a7988", uptimeSeconds: 3_725, dispatched: 0)

    static let lonelyStatus = StatusReport(
        name: "C", cluster: "quorum", role: "no-quorum", master: nil, quorate: false, epoch: 3,
        clusterSize: 3, majority: 2, connected: 0, lost: 2, metric: "port")

    static let peers = [
        PeerReport(name: "A", address: "10.0.0.1", port: 6170, state: .connected, birth: 1_700_000_000_000,
                   instance: "aa", lastHeardMillisecondsAgo: 120),
        PeerReport(name: "long-node.name_2", address: "192.168.100.200", port: 8080, state: .lost, birth: 0),
    ]
}
