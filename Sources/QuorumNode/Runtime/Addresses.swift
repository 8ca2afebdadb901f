import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Chooses the address a node advertises to its peers: never `0.0.0.0` or `::`, but a real
/// address of the interface that reaches them.
enum AdvertisedAddress {
    /// - Parameters:
    ///   - bind: the address the peer port is bound to.
    ///   - broadcast: where discovery datagrams go (an IPv4 broadcast address or an IPv6
    ///     multicast group), if discovery is on.
    ///   - interface: the discovery interface (`--discovery-interface`), if given.
    ///   - devices: the host's interfaces (from `System.enumerateDevices()`).
    static func choose(bind: String, broadcast: String?, interface: String? = nil, devices: [NIONetworkDevice]) -> String {
        if bind != "0.0.0.0" && bind != "::" { return bind }
        let v4 = devices.compactMap { d -> (device: NIONetworkDevice, address: String)? in
            guard let a = d.address, case .v4 = a, let ip = a.ipAddress else { return nil }
            return (d, ip)
        }
        let lan4 = v4.filter { !$0.address.hasPrefix("127.") }
        // IPv6: with an IPv6 group, or bound to :: on a host without an IPv4 LAN address.
        if broadcast?.contains(":") == true || (bind == "::" && lan4.isEmpty) {
            if let v6 = ipv6(devices: devices, interface: interface) { return v6 }
        }
        if let broadcast {
            // The interface whose broadcast address is the one we send to.
            if let hit = v4.first(where: { $0.device.broadcastAddress?.ipAddress == broadcast }) { return hit.address }
            // The interface whose subnet holds the broadcast address (127.255.255.255 → lo).
            if let target = ipv4(broadcast) {
                for (d, ip) in v4 {
                    guard let mask = d.netmask?.ipAddress.flatMap(ipv4), let own = ipv4(ip) else { continue }
                    if own & mask == target & mask { return ip }
                }
            }
        }
        // The limited broadcast 255.255.255.255 (or seeds alone) reaches the LAN of the first
        // non-loopback interface.
        if let lan = lan4.first { return lan.address }
        if bind == "::", let v6 = ipv6(devices: devices, interface: interface) { return v6 }
        return "127.0.0.1"
    }

    /// An IPv6 address to advertise: a global or unique-local one (of `interface` when given),
    /// else a link-local one with its zone; nil when there is none.
    static func ipv6(devices: [NIONetworkDevice], interface: String?) -> String? {
        var routable: [String] = []
        var linkLocal: [String] = []
        for d in devices where interface == nil || d.name == interface {
            guard let a = d.address, case .v6 = a, let ip = a.ipAddress, ip != "::1" else { continue }
            let plain = ip.split(separator: "%").first.map(String.init) ?? ip
            if isLinkLocal(plain) {
                linkLocal.append(plain + "%" + d.name)
            } else {
                routable.append(plain)
            }
        }
        return routable.first ?? linkLocal.first
    }

    /// `fe80::/10`.
    static func isLinkLocal(_ address: String) -> Bool {
        var a = in6_addr()
        let plain = address.split(separator: "%").first.map(String.init) ?? address
        guard inet_pton(AF_INET6, plain, &a) == 1 else { return false }
        return withUnsafeBytes(of: &a) { $0[0] == 0xfe && $0[1] & 0xc0 == 0x80 }
    }

    /// An IPv4 address as a number (host order), by the system's own parser (`inet_pton`:
    /// four decimal parts, nothing else).
    static func ipv4(_ s: String) -> UInt32? {
        var a = in_addr()
        guard inet_pton(AF_INET, s, &a) == 1 else { return nil }
        return UInt32(bigEndian: a.s_addr)
    }

    /// The socket address of a peer's advertised `address` (IPv4, IPv6, or link-local IPv6
    /// with a zone) without asking DNS. A link-local zone names the *peer's* interface; it is
    /// dialled through this node's discovery interface when one is given.
    static func socketAddress(_ address: String, port: UInt16, interface: String?) throws -> SocketAddress {
        var text = address
        if let interface, let percent = text.firstIndex(of: "%") { text = String(text[..<percent]) + "%" + interface }
        guard let first = try Resolver.addresses(host: text, port: port, numeric: true).first else {
            throw Resolver.Failure(description: "no address")
        }
        return first
    }
}
