import NIOCore
import QuorumCore
import QuorumSecurity

/// Splits a peer link's byte stream into whole frames, by the lengths in each frame's header.
///
/// Follows NIO's decoder contract: a short read returns `.needMoreData` without consuming;
/// every length is bounded by the wire format (at most `WireFormat.maximumPayload` per
/// frame), so a peer cannot make the buffer grow without limit. Bytes that are not a frame
/// header raise an error, and the link handler closes the connection. Opening (with the
/// cluster key) and decoding happen in the link, which knows the link's nonces.
struct FrameSplitter: ByteToMessageDecoder {
    typealias InboundOut = [UInt8]

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        guard let length = try WireFormat.frameLength(view), view.count >= length else { return .needMoreData }
        let frame = Array(view.prefix(length))
        buffer.moveReaderIndex(forwardBy: length)
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
