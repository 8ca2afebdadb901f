import NIOCore

/// `q` + Enter on an interactive terminal: leave gracefully. Runs on the node's event loop.
final class TerminalHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    unowned let transport: Transport
    private var line = TerminalLine()

    init(transport: Transport) { self.transport = transport }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        for byte in unwrapInboundIn(data).readableBytesView where line.append(byte) == "q" {
            transport.leaveRequested()
        }
    }
}

/// The line being typed: at most 256 bytes are kept; a newline completes it, trimmed of
/// blanks.
struct TerminalLine {
    private var bytes: [UInt8] = []

    /// Returns the completed line when `byte` ends one.
    mutating func append(_ byte: UInt8) -> String? {
        guard byte == UInt8(ascii: "\n") else {
            if bytes.count < 256 { bytes.append(byte) }
            return nil
        }
        defer { bytes.removeAll() }
        var s = Substring(String(decoding: bytes, as: UTF8.self))
        while let f = s.first, f == " " || f == "\r" || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\r" || l == "\t" { s.removeLast() }
        return String(s)
    }
}
