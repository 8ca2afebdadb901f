import NIOCore
import QuorumCore
import QuorumSecurity

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One TCP link to a peer. Both sides send `Hello` first; until the handshake is complete
/// nothing else is accepted, and a link that does not complete it in time is closed. With a
/// cluster key, every frame is sealed and, after the first hello, bound to this link (see
/// `LinkSecurity`); the link is up only once the peer proved it is live on it. A peer is
/// known by its handshake, never by the connection's source address.
///
/// Runs on the node's event loop, like the ``Transport`` it reports to.
final class PeerLink: ChannelInboundHandler {
    typealias InboundIn = [UInt8]
    typealias OutboundOut = ByteBuffer

    unowned let transport: Transport
    /// Who we meant to reach, for outbound links to a known peer.
    let expected: NodeIdentity?
    /// The seed dialled, for outbound links to a seed (whose peer is not known yet).
    let seed: Int?
    /// This node opened the link.
    var isOutbound: Bool { expected != nil || seed != nil }
    private(set) var identity: NodeIdentity?
    private var context: ChannelHandlerContext?
    private var handshakeTimeout: Scheduled<Void>?
    private var quiet = false
    private var security: LinkSecurity
    private var pendingHello: Hello?
    /// The protocol versions the peer said it speaks before its hello (nil: only version 1).
    private(set) var peerVersions: ProtocolRange?

    init(transport: Transport, expected: NodeIdentity?, seed: Int? = nil) {
        self.transport = transport
        self.expected = expected
        self.seed = seed
        self.security = LinkSecurity(keyring: transport.keyring, cluster: transport.settings.cluster, speaking: transport.settings.protocolVersion)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard handshakeTimeout == nil else { return }
        guard transport.linkHandshakeStarted(self), let hello = transport.hello else {
            context.close(promise: nil)
            return
        }
        handshakeTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) { [weak self] in
            guard let self, self.identity == nil else { return }
            self.transport.notices.drop("handshake", error: "a peer link sent no hello within 2 s")
            self.context?.close(promise: nil)
        }
        // An older build skips the versions frame whole, and so speaks version 1 on this link.
        if let versions = transport.versions { context.write(NIOAny(ByteBuffer(bytes: security.outbound(versions))), promise: nil) }
        context.writeAndFlush(NIOAny(ByteBuffer(bytes: security.outbound(hello))), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message: Message
        let bound: Bool
        do {
            switch try security.inbound(unwrapInboundIn(data)) {
            case .skip:
                transport.notices.drop("version", error: "a frame of a newer protocol version (this node speaks up to \(transport.settings.protocolVersion))")
                return
            case .message(let m, let b):
                message = m
                bound = b
            }
        } catch {
            // A frame that does not open or decode: the stream cannot be trusted any more.
            transport.notices.rejectedFrame(from: identity?.name ?? expected?.name, error: "\(error)")
            context.close(promise: nil)
            return
        }
        if identity == nil {
            if case .versions(let range) = message, peerVersions == nil {
                peerVersions = range
                return
            }
            guard case .hello(let hello) = message else {
                transport.notices.drop("handshake", error: "a peer link sent \(message.kind) before hello")
                context.close(promise: nil)
                return
            }
            if security.isSealed {
                if !bound {
                    // The peer's nonce is known now: prove we are live on this link.
                    guard pendingHello == nil, let own = transport.hello else { return }
                    pendingHello = hello
                    context.writeAndFlush(NIOAny(ByteBuffer(bytes: security.outbound(own))), promise: nil)
                    return
                }
                guard let first = pendingHello, first == hello else {
                    transport.notices.rejectedFrame(from: hello.identity.name, error: "the bound hello differs from the first one")
                    context.close(promise: nil)
                    return
                }
            }
            handshakeTimeout?.cancel()
            identity = hello.identity
            if !transport.linkEstablished(self, hello: hello) {
                quiet = true
                context.close(promise: nil)
            }
            return
        }
        transport.received(message, on: self)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        if !quiet { transport.linkClosed(self) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A reset is what a crashed peer's kernel sends: not bad input, just a closed link.
        if let error = error as? IOError {
            if error.errnoCode == ETIMEDOUT, let identity {
                transport.notices.linkTimedOut(identity.name, after: transport.settings.coreConfiguration.timing.linkTimeout)
            }
        } else {
            transport.notices.drop("link", error: "\(identity?.name ?? "a peer link before its hello"): \(error)")
        }
        context.close(promise: nil)
    }

    func send(_ message: Message) {
        guard let context, context.channel.isActive else { return }
        context.writeAndFlush(NIOAny(ByteBuffer(bytes: security.outbound(message))), promise: nil)
    }

    /// The connection is open (it may still close before its turn in the core adapter's inbox).
    var isActive: Bool { context?.channel.isActive ?? false }

    /// Close without telling the core (a duplicate, replaced or refused link).
    func closeQuietly() {
        quiet = true
        context?.close(promise: nil)
    }

    /// Close once what was written has been sent.
    func closeAfterFlush() -> EventLoopFuture<Void> {
        guard let context else { return transport.loop.makeSucceededVoidFuture() }
        quiet = true
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(NIOAny(ByteBuffer()), promise: nil)
        context.close(mode: .output, promise: nil)
        context.channel.closeFuture.whenComplete { _ in promise.succeed() }
        // A peer that never closes its side: stop waiting after a moment.
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .milliseconds(500)) { channel.close(promise: nil) }
        return promise.futureResult
    }
}
