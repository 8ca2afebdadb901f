#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

// Small POSIX helpers for the integration tests: spawning children (posix_spawn, so that the
// child's signal dispositions, process group and file descriptors are exactly what we want),
// reaping them, clocks, free ports and raw sockets.

struct IntegrationError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

/// CLOCK_MONOTONIC in nanoseconds: the clock the hook helper (`monotime`) writes too.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Runs blocking work on its own thread, so that it never holds one of the (two, on CI)
/// threads of Swift's cooperative pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}

/// How a child ended.
enum ExitStatus: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    init(waitStatus status: Int32) {
        if status & 0x7f == 0 {
            self = .exited((status >> 8) & 0xff)
        } else {
            self = .signaled(status & 0x7f)
        }
    }

    var description: String {
        switch self {
        case .exited(let code): "exit status \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }
}

/// Where a child's standard output and error go.
enum ChildOutput {
    /// Both to one file (appended).
    case combined(String)
    /// Standard output and standard error to two files (truncated).
    case separate(out: String, err: String)
}

private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

/// glibc ≥ 2.34 has `posix_spawn_file_actions_addclosefrom_np`, but the Swift Glibc module does
/// not export it: look it up, so that children inherit no descriptor of the test process.
private let addCloseFrom: AddCloseFrom? = {
    guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "posix_spawn_file_actions_addclosefrom_np") else {
        return nil
    }
    return unsafeBitCast(symbol, to: AddCloseFrom.self)
}()

/// Starts `executable` with `arguments` in its own process group, stdin from /dev/null, the
/// usual signals at their default dispositions and unblocked, and no inherited descriptor but
/// 0, 1 and 2. Returns its pid.
func spawnChild(
    executable: String, arguments: [String], environment: [String: String], output: ChildOutput
) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    switch output {
    case .combined(let path):
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
    case .separate(let out, let err):
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    }
    if let addCloseFrom { _ = addCloseFrom(&actions, 3) }

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var mask = sigset_t()
    sigemptyset(&mask)
    posix_spawnattr_setsigmask(&attributes, &mask)
    // A test runner started in the background (`swift test &`) ignores SIGINT and SIGQUIT, and
    // ignored dispositions survive exec: give the child the defaults, as a terminal would.
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD, SIGTSTP, SIGTTIN, SIGTTOU] {
        sigaddset(&defaults, signal)
    }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setpgroup(&attributes, 0)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    var pid: pid_t = 0
    let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
    guard result == 0 else {
        throw IntegrationError("cannot start \(executable): \(errnoText(result))")
    }
    return pid
}

/// `waitpid` without blocking: the status if `pid` has ended (and is now reaped), else nil.
func reapIfExited(_ pid: pid_t) -> ExitStatus? {
    var status: Int32 = 0
    while true {
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid { return ExitStatus(waitStatus: status) }
        if result == -1 && errno == EINTR { continue }
        return nil
    }
}

/// Waits (polling, bounded by `timeout`) for `pid` to end; SIGKILLs it if it has not.
func waitForChild(_ pid: pid_t, timeout: Duration) -> ExitStatus {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    var pause: UInt32 = 200
    while ContinuousClock.now < deadline {
        if let status = reapIfExited(pid) { return status }
        usleep(pause)
        pause = min(pause * 2, 5_000)
    }
    kill(pid, SIGKILL)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return ExitStatus(waitStatus: status)
}

/// The result of running a short-lived command to its end.
struct CommandRun: Sendable, CustomStringConvertible {
    var status: ExitStatus
    var standardOutput: String
    var standardError: String

    var description: String {
        "\(status); stdout: \(standardOutput.debugDescription); stderr: \(standardError.debugDescription)"
    }
}

/// Runs a command to completion (killed after `timeout`), on its own thread, capturing its output
/// through files in `scratchDirectory`.
func runCommand(
    _ executable: String, _ arguments: [String], environment: [String: String],
    scratchDirectory: String, timeout: Duration = .seconds(15)
) async throws -> CommandRun {
    try await onThread {
        let stem = scratchDirectory + "/cmd-" + UUID().uuidString.prefix(8)
        let out = stem + ".out", err = stem + ".err"
        defer {
            unlink(out)
            unlink(err)
        }
        let pid = try spawnChild(
            executable: executable, arguments: arguments, environment: environment,
            output: .separate(out: out, err: err))
        let status = waitForChild(pid, timeout: timeout)
        return CommandRun(
            status: status,
            standardOutput: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
            standardError: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }
}

// MARK: Ports

/// Hands out ports that no other test of this process got, that are free now, and that lie
/// below the kernel's ephemeral range, so an outgoing connection never takes one while its
/// node is down (a restarted node must get its port back).
enum PortAllocator {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var handedOut: Set<UInt16> = []

    private static let range: ClosedRange<UInt16> = {
        // "32768\t60999": stay below the first number.
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        let low = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { UInt16($0) } ?? 32768
        let top = max(UInt16(12_000), min(low, 32768) - 1)
        return 10_000...top
    }()

    /// A TCP port that 127.0.0.1 can listen on.
    static func tcpPort() throws -> UInt16 { try port(type: SOCK_STREAM) }

    /// A UDP port (the discovery port): nothing is bound to it on any address.
    static func udpPort() throws -> UInt16 { try port(type: SOCK_DGRAM) }

    private static func port(type: __socket_type) throws -> UInt16 {
        lock.lock()
        defer { lock.unlock() }
        for _ in 0..<2000 {
            let candidate = UInt16.random(in: range)
            guard !handedOut.contains(candidate) else { continue }
            // A discovery port is bound on 0.0.0.0 by nodes; a peer port on 127.0.0.1.
            let free = type == SOCK_DGRAM
                ? canBind(type: type, address: INADDR_ANY, port: candidate)
                : canBind(type: type, address: INADDR_LOOPBACK, port: candidate)
                    && canBind(type: SOCK_DGRAM, address: INADDR_ANY, port: candidate)
            if free {
                handedOut.insert(candidate)
                return candidate
            }
        }
        throw IntegrationError("no free port found in \(range)")
    }

    private static func canBind(type: __socket_type, address: UInt32, port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        sa.sin_addr.s_addr = address.bigEndian
        return withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        } == 0
    }
}

// MARK: Raw sockets for the robustness and notify tests

func ipv4(_ text: String, port: UInt16) -> sockaddr_in {
    var sa = sockaddr_in()
    sa.sin_family = sa_family_t(AF_INET)
    sa.sin_port = port.bigEndian
    inet_pton(AF_INET, text, &sa.sin_addr)
    return sa
}

/// Sends each datagram to `address:port` (SO_BROADCAST set, so a broadcast address works).
func sendDatagrams(_ datagrams: [[UInt8]], to address: String, port: UInt16) throws {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw IntegrationError("socket: \(errnoText())") }
    defer { close(fd) }
    var on: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, socklen_t(MemoryLayout<Int32>.size))
    var destination = ipv4(address, port: port)
    for datagram in datagrams {
        let sent = datagram.withUnsafeBytes { raw in
            withUnsafePointer(to: &destination) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == datagram.count else { throw IntegrationError("sendto \(address):\(port): \(errnoText())") }
    }
}

/// Opens a TCP connection to `127.0.0.1:port`, writes `bytes` (as far as the peer accepts them),
/// then closes. Returns how many bytes were written.
@discardableResult
func sendOverTCP(_ bytes: [UInt8], port: UInt16, timeoutSeconds: Int = 2) throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw IntegrationError("socket: \(errnoText())") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var destination = ipv4("127.0.0.1", port: port)
    let connected = withUnsafePointer(to: &destination) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { throw IntegrationError("connect 127.0.0.1:\(port): \(errnoText())") }
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { break }  // the node closed the connection: that is a fine answer to garbage
        offset += n
    }
    return offset
}

private func unixAddress(_ path: String) throws -> sockaddr_un {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
        throw IntegrationError("socket path too long (\(bytes.count) bytes): \(path)")
    }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    return address
}

/// Connects to a Unix stream socket, writes `bytes`, half-closes, and reads until the other side
/// closes or `timeoutSeconds` pass. Returns what was read.
func unixStreamExchange(path: String, send bytes: [UInt8], timeoutSeconds: Int = 3) throws -> [UInt8] {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw IntegrationError("socket: \(errnoText())") }
    defer { close(fd) }
    var address = try unixAddress(path)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard connected == 0 else { throw IntegrationError("connect \(path): \(errnoText())") }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { break }
        offset += n
    }
    shutdown(fd, Int32(SHUT_WR))
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    let deadline = ContinuousClock.now.advanced(by: .seconds(timeoutSeconds))
    while ContinuousClock.now < deadline, received.count < 1 << 20 {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 { received += chunk[0..<n]; continue }
        if n < 0 && errno == EINTR { continue }
        break  // closed, reset or timed out
    }
    return received
}

/// A bound Unix datagram socket playing systemd's part for NOTIFY_SOCKET.
final class NotifyListener: Sendable {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IntegrationError("socket: \(errnoText())") }
        var address = try unixAddress(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            throw IntegrationError("bind \(path): \(errnoText())")
        }
        // libsystemd sends credentials; accept them so nothing is refused.
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Collects messages until `done` holds for what was received so far, or `timeout` passes.
    func collect(timeout: Duration, until done: ([String]) -> Bool) -> [String] {
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while !done(messages) {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { break }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let millis = Int32(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1, 100))
            let ready = poll(&pfd, 1, millis)
            guard ready > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { messages.append(String(decoding: buffer[0..<n], as: UTF8.self)) }
        }
        return messages
    }
}

/// A UDP socket bound (SO_REUSEADDR + SO_REUSEPORT, like the nodes') to `port` on all addresses,
/// used to check that nothing was broadcast.
final class DiscoveryListener: Sendable {
    private let fd: Int32

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IntegrationError("socket: \(errnoText())") }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, socklen_t(MemoryLayout<Int32>.size))
        var address = ipv4("0.0.0.0", port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            throw IntegrationError("bind UDP \(port): \(errnoText())")
        }
    }

    deinit { close(fd) }

    /// Datagrams already queued (loopback delivery is synchronous, so after a sender exited,
    /// everything it sent is here).
    func queuedDatagrams() -> Int {
        var count = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while count < 10_000 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 0 { break }
            count += 1
        }
        return count
    }
}
