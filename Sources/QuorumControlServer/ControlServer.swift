#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import NIOCore
import NIOPosix
import QuorumControl
import ServiceLifecycle

/// The node's control socket: a Unix-domain stream socket that answers one ``ControlRequest``
/// per connection through an injected handler.
///
/// Use it in two steps, so that a daemon can report readiness only once the socket exists:
///
/// ```swift
/// let server = try await ControlServer.bind(socketPath: path, logger: logger) { request in … }
/// // the socket accepts connections from here on; tell systemd READY=1
/// let group = ServiceGroup(services: [server, …], …)
/// try await group.run()
/// ```
///
/// Guarantees:
/// - Many clients are served concurrently, one child task per connection (structured, no stray tasks).
/// - A request line longer than ``Configuration/maximumRequestBytes`` or one that does not parse
///   gets `{"ok":false,"error":…}` and a closed connection; bad input never stops the server.
/// - A client that sends no complete line within ``Configuration/requestTimeout`` is disconnected
///   (the handler's own running time is not limited).
/// - On graceful shutdown (or cancellation) the server stops accepting, lets requests in
///   progress finish, then removes its socket file (only if it is still the file it created).
public struct ControlServer: Service {
    /// Answers one parsed request. It is called concurrently for concurrent clients.
    public typealias Handler = @Sendable (ControlRequest) async -> ControlResponse
    /// Opens the stream of a `watch` request: a feed, or a refusal (too many watchers).
    public typealias Watch = @Sendable () async -> Result<LineFeed, WatchRefusal>

    public struct WatchRefusal: Error, Sendable {
        public var message: String
        public init(_ message: String) { self.message = message }
    }

    public struct Configuration: Sendable {
        /// The longest request line accepted, not counting its newline.
        public var maximumRequestBytes: Int
        /// How long a client may take to send its request line.
        public var requestTimeout: Duration
        /// The socket file's permission bits, set right after binding.
        public var socketMode: mode_t
        /// Permission bits for the socket's parent directory when it has to be created.
        public var directoryMode: Int
        /// The listen backlog.
        public var backlog: Int32
        /// Decides, from the caller's kernel-reported credentials (`SO_PEERCRED`), whether
        /// it may ask anything: nil allows, a string is the refusal. `nil`: everyone the
        /// socket file's mode lets in.
        public var authorize: (@Sendable (PeerCredentials) -> String?)? = nil

        public init(
            maximumRequestBytes: Int = ControlProtocol.maximumRequestBytes,
            requestTimeout: Duration = .seconds(2),
            socketMode: mode_t = 0o660,
            directoryMode: Int = 0o750,
            backlog: Int32 = 256
        ) {
            self.maximumRequestBytes = maximumRequestBytes
            self.requestTimeout = requestTimeout
            self.socketMode = socketMode
            self.directoryMode = directoryMode
            self.backlog = backlog
        }
    }

    typealias Connection = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    /// Where the socket is bound.
    public let socketPath: String
    private let configuration: Configuration
    private let listener: NIOAsyncChannel<Connection, Never>
    private let socketFile: FileIdentity?
    private let handler: Handler
    private let watch: Watch?
    private let logger: Logger

    /// Binds the socket and returns a server ready to ``run()``; connections made before `run()`
    /// starts wait in the backlog.
    ///
    /// Creates the parent directory (with ``Configuration/directoryMode``) when it is missing,
    /// removes a stale socket left by a process that is gone, and refuses to take over a path
    /// where another process still listens or that is not a socket.
    public static func bind(
        socketPath: String,
        configuration: Configuration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "quorum.control"),
        watch: Watch? = nil,
        handler: @escaping Handler
    ) async throws -> ControlServer {
        try SocketFile.prepare(socketPath, directoryMode: configuration.directoryMode)
        let timeout = TimeAmount(configuration.requestTimeout)
        let listener: NIOAsyncChannel<Connection, Never>
        do {
            listener = try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(.backlog, value: configuration.backlog)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .bind(unixDomainSocketPath: socketPath) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // The request deadline: closing the channel ends the read loop. It is
                        // met when the line's newline arrives on the event loop, so a request
                        // sent in time is answered even if the task that reads it runs late.
                        let deadline = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
                        channel.closeFuture.whenComplete { _ in deadline.cancel() }
                        try channel.pipeline.syncOperations.addHandler(
                            RequestDeadline(deadline, limit: configuration.maximumRequestBytes, inputClosed: channel.eventLoop.makePromise()))
                        return try Connection(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw ControlServerError(socketPath: socketPath, problem: "cannot bind: \(error)")
        }
        guard chmod(socketPath, configuration.socketMode) == 0 else {
            let code = errno
            try? await listener.channel.close()
            SocketFile.remove(socketPath, ifStill: nil)
            throw ControlServerError(
                socketPath: socketPath, problem: "cannot set its mode: \(String(cString: strerror(code)))")
        }
        logger.debug("control socket bound", metadata: ["quorum.socket": "\(socketPath)"])
        return ControlServer(
            socketPath: socketPath, configuration: configuration, listener: listener,
            socketFile: SocketFile.identity(socketPath), handler: handler, watch: watch, logger: logger)
    }

    private init(
        socketPath: String, configuration: Configuration, listener: NIOAsyncChannel<Connection, Never>,
        socketFile: FileIdentity?, handler: @escaping Handler, watch: Watch?, logger: Logger
    ) {
        self.socketPath = socketPath
        self.configuration = configuration
        self.listener = listener
        self.socketFile = socketFile
        self.handler = handler
        self.watch = watch
        self.logger = logger
    }

    /// Serves until graceful shutdown or cancellation (both a normal return), then removes the socket file.
    public func run() async throws {
        defer { SocketFile.remove(socketPath, ifStill: socketFile) }
        let listenerChannel = listener.channel
        do {
            try await withTaskCancellationOrGracefulShutdownHandler {
                try await listener.executeThenClose { connections in
                    try await withThrowingDiscardingTaskGroup { group in
                        for try await connection in connections {
                            group.addTask { await self.serve(connection) }
                        }
                    }
                }
            } onCancelOrGracefulShutdown: {
                listenerChannel.close(promise: nil)
            }
        } catch is CancellationError {
            // Cancelled: the listener is closed and connections in progress have ended; a normal stop.
        }
        logger.debug("control socket closed", metadata: ["quorum.socket": "\(socketPath)"])
    }

    /// Closes a server that will not be run (for example when start-up fails after binding)
    /// and removes its socket file. Not needed after ``run()``.
    public func close() async {
        try? await listener.channel.close()
        SocketFile.remove(socketPath, ifStill: socketFile)
    }

    /// One connection: read one line, answer it, close. Never throws: a broken client is logged.
    private func serve(_ connection: Connection) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                let response: ControlResponse
                var oversized = false
                // Who is asking, from the kernel; judged once the request has been read (answering
                // before reading would reset the connection and lose the answer).
                var refusal: String? = nil
                var credentials: PeerCredentials? = nil
                if let authorize = configuration.authorize {
                    credentials = try? await PeerCredentials.of(connection.channel)
                    refusal = credentials.map(authorize) ?? "the caller's credentials are unknown"
                }
                switch try await Self.readLine(inbound, limit: configuration.maximumRequestBytes) {
                case .line(let bytes):
                    // A line ended by EOF instead of a newline counts only if the client half-closed;
                    // after the deadline closed the channel, a partial line must not be acted on.
                    guard connection.channel.isActive else {
                        logger.debug("control client timed out")
                        return
                    }
                    if let refusal {
                        logger.notice("control request refused: \(refusal)", metadata: [
                            "quorum.caller.uid": "\(credentials.map { String($0.uid) } ?? "?")",
                            "quorum.caller.pid": "\(credentials.map { String($0.pid) } ?? "?")",
                        ])
                        try await outbound.write(ByteBuffer(bytes: ControlResponse.failure("permission denied: \(refusal)").encodedLine()))
                        return
                    }
                    let request: ControlRequest
                    do throws(ControlProtocolError) {
                        request = try ControlRequest.parse(bytes)
                    } catch {
                        logger.debug("bad control request", metadata: ["error": "\(error.message)"])
                        try await outbound.write(ByteBuffer(bytes: ControlResponse.failure(error.message).encodedLine()))
                        return
                    }
                    if request == .watch, let watch {
                        switch await watch() {
                        case .success(let feed):
                            try await stream(feed, to: outbound, channel: connection.channel)
                            return
                        case .failure(let refusal):
                            response = .failure(refusal.message)
                        }
                    } else if request == .watch {
                        response = .failure("this node has no event stream")
                    } else {
                        response = await handler(request)
                    }
                case .tooLong:
                    oversized = true
                    logger.debug("oversized control request")
                    response = .failure(
                        "request longer than \(configuration.maximumRequestBytes) bytes: expected one short line of JSON")
                case .nothing:
                    logger.debug("control client sent no request")
                    return
                }
                try await outbound.write(ByteBuffer(bytes: response.encodedLine()))
                if case .failure = response, !response.isOK, oversized {
                    // The rest of an oversized request is still unread; closing now would reset
                    // the connection and could destroy the answer before the client reads it.
                    outbound.finish()
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
        } catch {
            logger.debug("control connection failed", metadata: ["error": "\(error)"])
        }
    }

    /// A watch: every line of the feed, written as the client takes it (the writer waits
    /// while the socket is full), until the feed ends, the client closes its side, or the
    /// server shuts down.
    private func stream(_ feed: LineFeed, to outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, channel: any Channel) async throws {
        channel.closeFuture.whenComplete { _ in feed.cancel() }
        channel.pipeline.handler(type: RequestDeadline.self).flatMap { $0.inputClosedFuture }.whenComplete { _ in feed.cancel() }
        try await withGracefulShutdownHandler {
            for await line in feed.lines {
                try await outbound.write(ByteBuffer(bytes: line))
                feed.consumed()
            }
        } onGracefulShutdown: {
            feed.cancel()
        }
    }

    enum ReadOutcome: Equatable {
        /// The bytes before the first newline (or before EOF when there is no newline).
        case line([UInt8])
        /// More than `limit` bytes without a newline.
        case tooLong
        /// The stream ended with no bytes.
        case nothing
    }

    /// Whether `count` bytes without a newline are more than a request line of `limit` bytes
    /// may have: one extra byte is allowed for a `\r` before the newline (`parse` judges the
    /// exact length).
    static func isTooLong(_ count: Int, limit: Int) -> Bool { count > limit + 1 }

    /// Accumulates chunks until a newline, never holding much more than `limit` bytes.
    static func readLine(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>, limit: Int) async throws -> ReadOutcome {
        var pending: [UInt8] = []
        for try await chunk in inbound {
            let view = chunk.readableBytesView
            if let newline = view.firstIndex(of: UInt8(ascii: "\n")) {
                pending.append(contentsOf: view[..<newline])
                return isTooLong(pending.count, limit: limit) ? .tooLong : .line(pending)
            }
            pending.append(contentsOf: view)
            if isTooLong(pending.count, limit: limit) { return .tooLong }
        }
        return pending.isEmpty ? .nothing : .line(pending)
    }
}

/// Why the control socket could not be set up; names the path and what to do.
public struct ControlServerError: Error, CustomStringConvertible {
    public var socketPath: String
    public var problem: String

    public var description: String { "control socket \(socketPath): \(problem)" }
}
