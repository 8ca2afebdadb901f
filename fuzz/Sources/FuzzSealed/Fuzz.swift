import QuorumCore
import QuorumSecurity

let keyring = try! ClusterKeyring(parsing: "1 " + String(repeating: "5a", count: 32), path: "fuzz")

/// The keyed decoders: a peer link's frames (split by their headers, then opened) and
/// discovery datagrams, with the cluster key.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var link = LinkSecurity(keyring: keyring, cluster: "quorum")
    var rest = bytes[...]
    while let n = try? WireFormat.frameLength(rest), n <= rest.count {
        _ = try? link.inbound(Array(rest.prefix(n)))
        rest = rest.dropFirst(n)
    }
    _ = try? DatagramSealing.open(bytes, keyring: keyring, cluster: "quorum")
    var plain = LinkSecurity(keyring: nil, cluster: "quorum")
    _ = try? plain.inbound(bytes)
    return 0
}
