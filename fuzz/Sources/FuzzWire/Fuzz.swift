import QuorumCore

/// The wire decoder (frames and datagrams) and the state-file decoder: any bytes give a
/// message, a request for more, a skip or an error — never a trap or a runaway allocation.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if case .message(let m, let consumed)? = try? WireFormat.decode(bytes) {
        // What decodes must re-encode to the same frame.
        precondition(WireFormat.encode(m) == Array(bytes[..<consumed]) || bytes[4] != 0 || bytes[5] != 0)
    }
    _ = try? WireFormat.decodeDatagram(bytes)
    _ = try? PersistentState(decoding: bytes)
    return 0
}
