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
final class PeerLink: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = [UInt8]
    typealias OutboundOut = ByteBuffer

    unowned let driver: NodeDriver
    /// Who we meant to reach, for outbound links.
    let expected: NodeIdentity?
    private(set) var identity: NodeIdentity?
    private var context: ChannelHandlerContext?
    private var handshakeTimeout: Scheduled<Void>?
    private var quiet = false
    private var security: LinkSecurity
    private var pendingHello: Hello?

    init(driver: NodeDriver, expected: NodeIdentity?) {
        self.driver = driver
        self.expected = expected
        self.security = LinkSecurity(keyring: driver.keyring, cluster: driver.settings.cluster)
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
        guard driver.linkHandshakeStarted(self), let hello = driver.hello() else {
            context.close(promise: nil)
            return
        }
        handshakeTimeout = context.eventLoop.scheduleTask(in: .seconds(2)) { [weak self] in
            guard let self, self.identity == nil else { return }
            self.driver.noteBadInput("handshake", error: "a peer link sent no hello within 2 s")
            self.context?.close(promise: nil)
        }
        context.writeAndFlush(NIOAny(ByteBuffer(bytes: security.outbound(hello))), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message: Message
        let bound: Bool
        do {
            switch try security.inbound(unwrapInboundIn(data)) {
            case .skip:
                driver.noteBadInput("version", error: "a frame of a newer format version (this node speaks \(WireFormat.version))")
                return
            case .message(let m, let b):
                message = m
                bound = b
            }
        } catch {
            // A frame that does not open or decode: the stream cannot be trusted any more.
            driver.noteRejectedFrame(from: identity?.name ?? expected?.name, error: "\(error)")
            context.close(promise: nil)
            return
        }
        if identity == nil {
            guard case .hello(let hello) = message else {
                driver.noteBadInput("handshake", error: "a peer link sent \(message.kind) before hello")
                context.close(promise: nil)
                return
            }
            if security.isSealed {
                if !bound {
                    // The peer's nonce is known now: prove we are live on this link.
                    guard pendingHello == nil, let own = driver.hello() else { return }
                    pendingHello = hello
                    context.writeAndFlush(NIOAny(ByteBuffer(bytes: security.outbound(own))), promise: nil)
                    return
                }
                guard let first = pendingHello, first == hello else {
                    driver.noteRejectedFrame(from: hello.identity.name, error: "the bound hello differs from the first one")
                    context.close(promise: nil)
                    return
                }
            }
            handshakeTimeout?.cancel()
            identity = hello.identity
            if !driver.linkEstablished(self, hello: hello) {
                quiet = true
                context.close(promise: nil)
            }
            return
        }
        driver.received(message, on: self)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        if !quiet { driver.linkClosed(self) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A reset is what a crashed peer's kernel sends: not bad input, just a closed link.
        if let error = error as? IOError {
            if error.errnoCode == ETIMEDOUT, let identity {
                driver.noteLinkTimedOut(identity.name)
            }
        } else {
            driver.noteBadInput("link", error: "\(identity?.name ?? "a peer link before its hello"): \(error)")
        }
        context.close(promise: nil)
    }

    func send(_ message: Message) {
        guard let context, context.channel.isActive else { return }
        context.writeAndFlush(NIOAny(ByteBuffer(bytes: security.outbound(message))), promise: nil)
    }

    /// The connection is open (it may still close before its turn in the driver's inbox).
    var isActive: Bool { context?.channel.isActive ?? false }

    /// Close without telling the core (a duplicate, replaced or refused link).
    func closeQuietly() {
        quiet = true
        context?.close(promise: nil)
    }

    /// Close once what was written has been sent.
    func closeAfterFlush() -> EventLoopFuture<Void> {
        guard let context else { return driver.loop.makeSucceededVoidFuture() }
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

/// Discovery datagrams in: bytes to the driver, which decodes and drops what is not ours.
final class DiscoveryHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    unowned let driver: NodeDriver

    init(driver: NodeDriver) { self.driver = driver }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        driver.received(datagram: Array(envelope.data.readableBytesView))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        driver.noteBadInput("datagram", error: "\(error)")
    }
}

/// `q` + Enter on an interactive terminal: leave gracefully.
final class TerminalHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    unowned let driver: NodeDriver
    private var line: [UInt8] = []

    init(driver: NodeDriver) { self.driver = driver }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        for byte in unwrapInboundIn(data).readableBytesView {
            if byte == UInt8(ascii: "\n") {
                let text = String(decoding: line, as: UTF8.self).trimmingCharacters()
                line.removeAll()
                if text == "q" { driver.feed(.leaveRequested) }
            } else if line.count < 256 {
                line.append(byte)
            }
        }
    }
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\r" || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\r" || l == "\t" { s.removeLast() }
        return String(s)
    }
}
