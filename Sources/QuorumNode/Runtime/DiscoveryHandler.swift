import NIOCore

/// Discovery datagrams in: bytes to the transport, which opens them and drops what is not ours.
/// Runs on the node's event loop, like the transport it holds.
final class DiscoveryHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    unowned let transport: Transport

    init(transport: Transport) { self.transport = transport }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        transport.received(datagram: Array(envelope.data.readableBytesView))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        transport.notices.drop("datagram", error: "\(error)")
    }
}
