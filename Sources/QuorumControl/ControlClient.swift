#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A small blocking client for the control socket: connect, write one request line, read one
/// response line. Plain POSIX sockets, no event loop, so `quorumctl` stays small and quick.
public enum ControlClient {
    /// Sends `request` to the node listening at `socketPath` and returns its answer.
    ///
    /// `timeout` bounds the whole exchange (connect, write, waiting for the answer). The
    /// answer may be ``ControlResponse/failure(_:)``: the node was reached but refused.
    public static func send(
        _ request: ControlRequest, socketPath: String, timeout: Duration = .seconds(5)
    ) throws(ControlClientError) -> ControlResponse {
        let remaining = Remaining(timeout: timeout, socketPath: socketPath)
        let fd = try connect(request, socketPath: socketPath, timeout: timeout, remaining: remaining.get)
        defer { close(fd) }

        // Read until the newline that ends the answer.
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            try setTimeout(fd, SO_RCVTIMEO, remaining.get(), socketPath)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                let start = received.count
                received.append(contentsOf: chunk[0..<n])
                if let newline = received[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    received.removeSubrange((newline + 1)...)
                    break
                }
                if received.count > ControlProtocol.maximumResponseBytes {
                    throw ControlClientError(.badAnswer, socketPath: socketPath, detail: "the answer is too long")
                }
                continue
            }
            if n == 0 {
                // The node closed. An unterminated but complete answer is still accepted.
                if received.isEmpty { throw ControlClientError(.closedWithoutAnswer, socketPath: socketPath) }
                break
            }
            let code = errno
            if code == EINTR || code == EAGAIN || code == EWOULDBLOCK { continue }  // `remaining()` ends it
            if code == ECONNRESET { throw ControlClientError(.closedWithoutAnswer, socketPath: socketPath) }
            throw ControlClientError(errno: code, operation: "recv", socketPath: socketPath)
        }

        do {
            return try ControlResponse.parse(received)
        } catch {
            throw ControlClientError(.badAnswer, socketPath: socketPath, detail: error.message)
        }
    }

    /// Connects and writes the request line; returns the connected socket (the caller closes it).
    private static func connect(
        _ request: ControlRequest, socketPath: String, timeout: Duration, remaining: () throws(ControlClientError) -> Duration
    ) throws(ControlClientError) -> Int32 {
        let line = request.encodedLine()
        let capacity = UnixSocket.maximumPathBytes
        let pathBytes = Array(socketPath.utf8)
        guard !pathBytes.isEmpty, pathBytes.count <= capacity, !pathBytes.contains(0) else {
            throw ControlClientError(.badPath, socketPath: socketPath, detail: "a socket path is 1 to \(capacity) bytes")
        }

        let fd = UnixSocket.stream()
        guard fd >= 0 else { throw ControlClientError(errno: errno, operation: "socket", socketPath: socketPath) }
        var handedOver = false
        defer { if !handedOver { close(fd) } }

        try setTimeout(fd, SO_SNDTIMEO, remaining(), socketPath)
        let connected = UnixSocket.connect(fd, to: socketPath) ?? -1
        if connected != 0 {
            let code = errno
            switch code {
            case ENOENT, ENOTDIR: throw ControlClientError(.noSuchSocket, socketPath: socketPath)
            case EACCES, EPERM: throw ControlClientError(.permissionDenied, socketPath: socketPath)
            case ECONNREFUSED: throw ControlClientError(.notListening, socketPath: socketPath)
            case EAGAIN, EINPROGRESS, ETIMEDOUT: throw ControlClientError(.noAnswer, socketPath: socketPath, timeout: timeout)
            default: throw ControlClientError(errno: code, operation: "connect", socketPath: socketPath)
            }
        }

        // Write the request line (encoded before connecting: the node gives a connected
        // client only a short while to send it).
        var written = 0
        while written < line.count {
            try setTimeout(fd, SO_SNDTIMEO, remaining(), socketPath)
            let n = line[written...].withUnsafeBytes { raw in
                Glibc_send(fd, raw.baseAddress, raw.count)
            }
            if n > 0 { written += n; continue }
            let code = errno
            if n < 0 && code == EINTR { continue }
            if n < 0 && (code == EAGAIN || code == EWOULDBLOCK) { continue }  // `remaining()` ends it
            if n < 0 && (code == EPIPE || code == ECONNRESET) {
                throw ControlClientError(.closedWithoutAnswer, socketPath: socketPath)
            }
            throw ControlClientError(errno: code, operation: "send", socketPath: socketPath)
        }

        handedOver = true
        return fd
    }

    /// Sends `request` and hands every line of the answer to `onLine` (without its newline) as
    /// it arrives, for as long as the node sends (`watch`); returns when the node closes the
    /// connection or `onLine` returns `false`. Only connecting and sending are timed.
    public static func stream(
        _ request: ControlRequest, socketPath: String, timeout: Duration = .seconds(5), onLine: ([UInt8]) -> Bool
    ) throws(ControlClientError) {
        let fd = try connect(request, socketPath: socketPath, timeout: timeout, remaining: Remaining(timeout: timeout, socketPath: socketPath).get)
        defer { close(fd) }
        var noTimeout = timeval(tv_sec: 0, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &noTimeout, socklen_t(MemoryLayout<timeval>.size))
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                pending.append(contentsOf: chunk[0..<n])
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Array(pending[..<newline])
                    pending.removeSubrange(...newline)
                    if !onLine(line) { return }
                }
                if pending.count > ControlProtocol.maximumResponseBytes {
                    throw ControlClientError(.badAnswer, socketPath: socketPath, detail: "a line of the answer is too long")
                }
                continue
            }
            if n == 0 { return }
            let code = errno
            if code == EINTR { continue }
            if code == ECONNRESET { return }
            throw ControlClientError(errno: code, operation: "recv", socketPath: socketPath)
        }
    }

    /// What is left of `timeout` from now on; past it, `noAnswer`.
    private struct Remaining {
        let timeout: Duration
        let socketPath: String
        let deadline: ContinuousClock.Instant

        init(timeout: Duration, socketPath: String) {
            self.timeout = timeout
            self.socketPath = socketPath
            deadline = ContinuousClock.now.advanced(by: timeout)
        }

        func get() throws(ControlClientError) -> Duration {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { throw ControlClientError(.noAnswer, socketPath: socketPath, timeout: timeout) }
            return left
        }
    }

    private static func setTimeout(_ fd: Int32, _ option: Int32, _ duration: Duration, _ path: String) throws(ControlClientError) {
        let (seconds, attoseconds) = duration.components
        // Round up to a whole microsecond so a tiny remainder does not become "no timeout" (zero).
        var micros = attoseconds / 1_000_000_000_000
        if attoseconds % 1_000_000_000_000 != 0 { micros += 1 }
        var value = timeval(tv_sec: Int(seconds) + Int(micros / 1_000_000), tv_usec: .init(micros % 1_000_000))
        if value.tv_sec == 0 && value.tv_usec == 0 { value.tv_usec = 1 }
        guard setsockopt(fd, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
            throw ControlClientError(errno: errno, operation: "setsockopt", socketPath: path)
        }
    }
}

/// `send(2)` without SIGPIPE: a node that closed early must not kill the client.
private func Glibc_send(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
    return send(fd, buffer, count, Int32(MSG_NOSIGNAL))
    #else
    return send(fd, buffer, count, 0)
    #endif
}

/// Why the node could not be asked. `description` is one sentence naming the socket and what to check.
public struct ControlClientError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// Nothing exists at the path.
        case noSuchSocket
        /// The socket exists but this user may not connect to it.
        case permissionDenied
        /// The path exists but nothing listens on it (a stale socket of a stopped node, or not a socket).
        case notListening
        /// The node did not answer within the timeout.
        case noAnswer
        /// The node closed the connection before answering.
        case closedWithoutAnswer
        /// The node answered something that is not a valid response.
        case badAnswer
        /// The path cannot be a Unix socket path.
        case badPath
        /// Another system call failed.
        case system
    }

    public var kind: Kind
    public var socketPath: String
    public var detail: String

    public init(_ kind: Kind, socketPath: String, detail: String = "") {
        self.kind = kind
        self.socketPath = socketPath
        self.detail = detail
    }

    init(_ kind: Kind, socketPath: String, timeout: Duration) {
        self.init(kind, socketPath: socketPath, detail: "no answer within \(timeout.secondsText) s")
    }

    init(errno code: Int32, operation: String, socketPath: String) {
        self.init(.system, socketPath: socketPath, detail: "\(operation): \(String(cString: strerror(code)))")
    }

    public var description: String {
        let path = socketPath
        switch kind {
        case .noSuchSocket:
            return "cannot reach the node: no control socket at \(path) (is quorumd running? check -n NAME or --socket PATH)"
        case .permissionDenied:
            return "cannot reach the node: permission denied on \(path) (run as root or as a member of the socket's group)"
        case .notListening:
            return "cannot reach the node: nothing is listening on \(path) (the node has stopped, or the path is not its socket)"
        case .noAnswer:
            return "the node at \(path) did not answer: \(detail)"
        case .closedWithoutAnswer:
            return "the node at \(path) closed the connection without answering"
        case .badAnswer:
            return "the node at \(path) sent an answer that could not be read: \(detail)"
        case .badPath:
            return "bad socket path \(quoted(path)): \(detail)"
        case .system:
            return "cannot talk to the node at \(path): \(detail)"
        }
    }
}
