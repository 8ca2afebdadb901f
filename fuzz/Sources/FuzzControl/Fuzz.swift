import QuorumControl

/// The control socket's request parser and the client's response parser.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? ControlRequest.parse(bytes)
    _ = try? ControlResponse.parse(bytes)
    return 0
}
