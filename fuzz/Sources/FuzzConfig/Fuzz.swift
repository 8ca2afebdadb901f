import QuorumNode

/// The configuration file parser and the settings' validation, through quorumd's own entry
/// point: `--config FILE`, whose text is the fuzzer's input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? NodeSettings.parse(arguments: ["--config", "/fuzz.conf"], environment: [:], hostname: "fuzz-host", readFile: { _ in text })
    return 0
}
