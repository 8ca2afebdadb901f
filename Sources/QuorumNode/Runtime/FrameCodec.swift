import NIOCore
import QuorumCore

/// Splits a peer link's byte stream into messages with the core's wire format.
///
/// Follows NIO's decoder contract: a short read returns `.needMoreData` without consuming;
/// every length is bounded by the wire format (at most `WireFormat.maximumPayload` per
/// frame), so a peer cannot make the buffer grow without limit. Bytes that are not a frame
/// raise an error, and the link handler closes the connection.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = Message

    /// Called once per unknown newer format version (rolling upgrades): the frame is skipped.
    var onUnsupportedVersion: (UInt8) -> Void = { _ in }
    private var reportedVersions: Set<UInt8> = []

    init(onUnsupportedVersion: @escaping (UInt8) -> Void = { _ in }) {
        self.onUnsupportedVersion = onUnsupportedVersion
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        // Copy only the frame at the front: its length is in the header (checked by decode).
        var length = min(view.count, WireFormat.headerSize)
        if view.count >= WireFormat.headerSize {
            let start = view.startIndex
            let tag = Int(view[start + 5])
            let payload = Int(view[start + 6]) << 24 | Int(view[start + 7]) << 16 | Int(view[start + 8]) << 8 | Int(view[start + 9])
            length = min(view.count, WireFormat.headerSize + min(tag, WireFormat.maximumTag + 1) + min(payload, WireFormat.maximumPayload + 1))
        }
        switch try WireFormat.decode(Array(view.prefix(length))) {
        case .needMoreData:
            return .needMoreData
        case .unsupportedVersion(let v, let consumed):
            buffer.moveReaderIndex(forwardBy: consumed)
            if reportedVersions.insert(v).inserted { onUnsupportedVersion(v) }
            return .continue
        case .message(let m, let consumed):
            buffer.moveReaderIndex(forwardBy: consumed)
            context.fireChannelRead(Self.wrapInboundOut(m))
            return .continue
        }
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
