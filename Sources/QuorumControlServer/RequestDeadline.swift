import NIOCore

/// Cancels a connection's request deadline once the server has what it needs to answer: a
/// newline (the end of the request line), the client's end of stream, or more bytes than a
/// request may have (answered with an error). Passes everything on unchanged.
///
/// Runs on its connection's event loop; not `Sendable`.
final class RequestDeadline: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private var deadline: Scheduled<Void>?
    private let limit: Int
    private var received = 0
    private let inputClosed: EventLoopPromise<Void>

    /// Completes when the client closes its side (a watch ends then), or the channel closes.
    var inputClosedFuture: EventLoopFuture<Void> { inputClosed.futureResult }

    init(_ deadline: Scheduled<Void>, limit: Int, inputClosed: EventLoopPromise<Void>) {
        self.deadline = deadline
        self.limit = limit
        self.inputClosed = inputClosed
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        inputClosed.succeed()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if deadline != nil {
            let bytes = unwrapInboundIn(data).readableBytesView
            received += bytes.count
            if ControlServer.isTooLong(received, limit: limit) || bytes.contains(UInt8(ascii: "\n")) {
                deadline?.cancel()
                deadline = nil
            }
        }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelEvent, case .inputClosed = event as! ChannelEvent {
            deadline?.cancel()
            deadline = nil
            inputClosed.succeed()
        }
        context.fireUserInboundEventTriggered(event)
    }
}
