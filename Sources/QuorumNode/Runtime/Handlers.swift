import NIOCore
import QuorumCore

/// One TCP link to a peer. Both sides send `Hello` first; until the peer's `Hello` arrives
/// nothing else is accepted, and a link that does not complete its handshake in time is
/// closed. A peer is known by its handshake, never by the connection's source address.
final class PeerLink: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Message
    typealias OutboundOut = ByteBuffer

    unowned let driver: NodeDriver
    /// Who we meant to reach, for outbound links.
    let expected: NodeIdentity?
    private(set) var identity: NodeIdentity?
    private var context: ChannelHandlerContext?
    private var handshakeTimeout: Scheduled<Void>?
    private var quiet = false

    init(driver: NodeDriver, expected: NodeIdentity?) {
        self.driver = driver
        self.expected = expected
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
        context.writeAndFlush(NIOAny(ByteBuffer(bytes: WireFormat.encode(hello))), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        if identity == nil {
            guard case .hello(let hello) = message else {
                driver.noteBadInput("handshake", error: "a peer link sent \(message.kind) before hello")
                context.close(promise: nil)
                return
            }
            handshakeTimeout?.cancel()
            identity = hello.identity
            if !driver.linkEstablished(self, hello: hello, outbound: expected != nil) {
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
        if !(error is IOError) {
            driver.noteBadInput("link", error: "\(identity?.name ?? "a peer link before its hello"): \(error)")
        }
        context.close(promise: nil)
    }

    func send(_ message: Message) {
        guard let context, context.channel.isActive else { return }
        context.writeAndFlush(NIOAny(ByteBuffer(bytes: WireFormat.encode(message))), promise: nil)
    }

    /// Close without telling the core (a duplicate or replaced link).
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
        context.eventLoop.scheduleTask(in: .milliseconds(500)) { context.close(promise: nil) }
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
