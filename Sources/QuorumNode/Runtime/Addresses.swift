import NIOCore

/// Chooses the address a node advertises to its peers: never `0.0.0.0` or `::`, but a real
/// address of the interface that reaches them.
enum AdvertisedAddress {
    /// - Parameters:
    ///   - bind: the address the peer port is bound to.
    ///   - broadcast: where discovery datagrams go.
    ///   - devices: the host's interfaces (from `System.enumerateDevices()`).
    static func choose(bind: String, broadcast: String, devices: [NIONetworkDevice]) -> String {
        if bind != "0.0.0.0" && bind != "::" { return bind }
        let v4 = devices.compactMap { d -> (device: NIONetworkDevice, address: String)? in
            guard let a = d.address, case .v4 = a, let ip = a.ipAddress else { return nil }
            return (d, ip)
        }
        // The interface whose broadcast address is the one we send to.
        if let hit = v4.first(where: { $0.device.broadcastAddress?.ipAddress == broadcast }) { return hit.address }
        // The interface whose subnet holds the broadcast address (127.255.255.255 → lo).
        if let target = ipv4(broadcast) {
            for (d, ip) in v4 {
                guard let mask = d.netmask?.ipAddress.flatMap(ipv4), let own = ipv4(ip) else { continue }
                if own & mask == target & mask { return ip }
            }
        }
        // The limited broadcast 255.255.255.255 reaches the LAN of the first non-loopback interface.
        if let lan = v4.first(where: { !$0.address.hasPrefix("127.") }) { return lan.address }
        return "127.0.0.1"
    }

    static func ipv4(_ s: String) -> UInt32? {
        let parts = s.split(separator: ".")
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard let b = UInt8(p) else { return nil }
            v = v << 8 | UInt32(b)
        }
        return v
    }
}
