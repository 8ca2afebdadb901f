import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// `--metrics-listen`: serves `GET /metrics` (and `HEAD`) in Prometheus' text format; any
/// other path is 404, any other method 405. At most ``maximumConnections`` at once, each
/// closed after ``idleTimeout`` without a request; every answer closes its connection.
///
/// A port that cannot be bound never stops the node: the error is logged and the bind is
/// tried again every ``retryInterval`` until it works.
///
/// Concurrency: runs on the node's event loop; the exposition is rendered there too.
final class MetricsServer: Sendable {
    static let maximumConnections = 8
    static let idleTimeout: TimeAmount = .seconds(5)
    static let retryInterval: TimeAmount = .seconds(10)

    let host: String
    let port: UInt16
    private let loop: EventLoop
    private let logger: Logger
    private let render: @Sendable () -> EventLoopFuture<[UInt8]>
    private let state: NIOLoopBoundBox<State>

    struct State {
        var channel: Channel?
        var connections = 0
        var lastError: String?
        var retry: Scheduled<Void>?
        var stopped = false
    }

    init(host: String, port: UInt16, loop: EventLoop, logger: Logger, render: @escaping @Sendable () -> EventLoopFuture<[UInt8]>) {
        self.host = host
        self.port = port
        self.loop = loop
        self.logger = logger
        self.render = render
        self.state = .makeBoxSendingValue(State(), eventLoop: loop)
    }

    /// Where it listens, or why it does not yet (for `status`).
    var problem: String? {
        loop.assertInEventLoop()
        return state.value.lastError
    }

    func start() {
        loop.execute { self.bind() }
    }

    func stop() {
        loop.execute {
            self.state.value.stopped = true
            self.state.value.retry?.cancel()
            self.state.value.channel?.close(promise: nil)
        }
    }

    private func bind() {
        guard !state.value.stopped else { return }
        let endpoint = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(server: self))
                }
            }
            .bind(host: host, port: Int(port))
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    if self.state.value.stopped {
                        channel.close(promise: nil)
                        return
                    }
                    self.state.value.channel = channel
                    self.state.value.lastError = nil
                    self.logger.info("metrics on http://\(endpoint)/metrics")
                case .failure(let error):
                    let first = self.state.value.lastError == nil
                    self.state.value.lastError = "not listening on \(endpoint) (\(error)); retrying every \(Self.retryInterval.nanoseconds / 1_000_000_000) s"
                    if first {
                        self.logger.error("metrics: cannot listen on \(endpoint): \(error); the node runs on and tries again every \(Self.retryInterval.nanoseconds / 1_000_000_000) s",
                                          metadata: ["MESSAGE_ID": "\(MessageID.metricsNotListening.rawValue)"])
                    }
                    self.state.value.retry = self.loop.scheduleTask(in: Self.retryInterval) { self.bind() }
                }
            }
    }

    /// Admits a connection, or refuses it when too many are open.
    fileprivate func admit() -> Bool {
        guard state.value.connections < Self.maximumConnections else { return false }
        state.value.connections += 1
        return true
    }

    fileprivate func release() { state.value.connections -= 1 }

    fileprivate func exposition() -> EventLoopFuture<[UInt8]> { render() }
}

/// One HTTP connection of the metrics server.
private final class MetricsHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: MetricsServer
    private var admitted = false
    private var request: HTTPRequestHead?

    init(server: MetricsServer) { self.server = server }

    func channelActive(context: ChannelHandlerContext) {
        admitted = server.admit()
        if !admitted { context.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if admitted { server.release() }
        admitted = false
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            answer(head, context: context)
        }
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard head.method == .GET || head.method == .HEAD else {
            respond(.methodNotAllowed, body: Array("only GET and HEAD\n".utf8), head: head, context: context, extra: [("Allow", "GET, HEAD")])
            return
        }
        guard path == "/metrics" else {
            respond(.notFound, body: Array("see /metrics\n".utf8), head: head, context: context)
            return
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        server.exposition().hop(to: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case .success(let body):
                handler.respond(.ok, body: body, head: head, context: context,
                                contentType: "text/plain; version=0.0.4; charset=utf-8")
            case .failure:
                handler.respond(.serviceUnavailable, body: Array("the node is stopping\n".utf8), head: head, context: context)
            }
        }
    }

    private func respond(
        _ status: HTTPResponseStatus, body: [UInt8], head: HTTPRequestHead, context: ChannelHandlerContext,
        contentType: String = "text/plain; charset=utf-8", extra: [(String, String)] = []
    ) {
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", "\(body.count)"), ("Connection", "close")])
        for (name, value) in extra { headers.add(name: name, value: value) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
