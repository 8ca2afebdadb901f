import NIOCore
import NIOPosix
import QuorumCore
import QuorumSecurity
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The discovery socket of ``Transport``: bound on the discovery port that every node of the
/// host shares, sends the node's announcements (broadcast, or the IPv6 multicast group) and
/// hands received ones to the core; bound again when NIO closes it after a send error.
extension Transport {
    /// Where announcements go: the broadcast address, or the IPv6 multicast group on the
    /// discovery interface (`ff02::114%eth0`).
    static func discoveryTarget(_ settings: NodeSettings) throws -> SocketAddress {
        var group = settings.broadcastAddress
        if group.contains(":"), let interface = settings.discoveryInterface, !group.contains("%") { group += "%" + interface }
        guard let target = try Resolver.addresses(host: group, port: settings.broadcastPort, numeric: true).first else {
            throw Resolver.Failure(description: "no address for \(group)")
        }
        return target
    }

    struct NoSuchInterface: Error, CustomStringConvertible {
        var name: String
        var description: String { "no network interface \(name) with an IPv6 address (--discovery-interface)" }
    }

    /// The discovery socket: every node of the host shares the port. For IPv4 it receives and
    /// sends broadcasts; for IPv6 it joins the multicast group on the discovery interface and
    /// sends out of that interface (looped back to the host's other nodes).
    func discoveryBootstrap(_ me: NIOLoopBound<Transport>) -> EventLoopFuture<Channel> {
        let v6 = settings.broadcastAddress.contains(":")
        var device: NIONetworkDevice? = nil
        if v6, let name = settings.discoveryInterface {
            device = (try? System.enumerateDevices())?.first { d in
                guard d.name == name, let a = d.address, case .v6 = a else { return false }
                return true
            }
            if device == nil { return loop.makeFailedFuture(NoSuchInterface(name: name)) }
        }
        var bootstrap = DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: WireFormat.maximumDatagram + 1))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DiscoveryHandler(transport: me.value))
                }
            }
        if v6 {
            if let device {
                bootstrap = bootstrap.channelOption(ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_multicast_if), value: SocketOptionValue(device.interfaceIndex))
            }
        } else {
            bootstrap = bootstrap.channelOption(.socketOption(.so_broadcast), value: 1)
        }
        let bound = bootstrap.bind(host: v6 ? "::" : "0.0.0.0", port: Int(settings.broadcastPort))
        guard v6 else { return bound }
        let settings = self.settings
        return bound.flatMap { channel in
            guard let multicast = channel as? MulticastChannel, let group = try? Self.discoveryTarget(settings) else {
                return channel.eventLoop.makeSucceededFuture(channel)
            }
            return multicast.joinGroup(group, device: device).map { channel }
        }
    }

    /// NIO closes a datagram channel on most send errors (EPERM from a firewall rule,
    /// ENETUNREACH while a cable is out …). Discovery must outlive those: bind it again.
    func watchDiscovery(_ channel: Channel) {
        channel.closeFuture.assumeIsolated().whenComplete { _ in
            guard !self.stopped, self.discovery === channel else { return }
            self.discovery = nil
            self.notices.discoveryClosed()
            self.rebindDiscovery(after: .milliseconds(50))
        }
    }

    private func rebindDiscovery(after delay: TimeAmount) {
        loop.assumeIsolated().scheduleTask(in: delay) {
            guard !self.stopped else { return }
            self.discoveryBootstrap(NIOLoopBound(self, eventLoop: self.loop)).assumeIsolated().whenComplete { result in
                switch result {
                case .success(let channel):
                    self.discovery = channel
                    self.watchDiscovery(channel)
                case .failure(let error):
                    self.notices.drop("discovery", error: "cannot bind the discovery port again: \(error)")
                    self.rebindDiscovery(after: min(delay * 2, .seconds(2)))
                }
            }
        }
    }

    // MARK: - Announcements

    func broadcast(_ announce: Announce) {
        guard let discovery, let target = broadcastTarget else { return }
        let buffer = ByteBuffer(bytes: DatagramSealing.seal(.announce(announce), keyring: keyring, cluster: settings.cluster))
        discovery.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: buffer)).assumeIsolated().whenFailure { error in
            self.notices.drop("announce", error: "\(error)")
        }
    }

    func received(datagram bytes: [UInt8]) {
        do {
            switch try DatagramSealing.open(bytes, keyring: keyring, cluster: settings.cluster) {
            case .announce(let announce)?:
                delegate?.feed(.datagram(announce))
            case nil:
                notices.drop("datagram", error: "discovery datagram of a newer format version")
            case let other?:
                notices.drop("datagram", error: "unexpected \(other.kind) datagram")
            }
        } catch let error as Sealing.Failure {
            notices.rejectedFrame(from: nil, error: "discovery datagram: \(error)")
        } catch {
            notices.drop("datagram", error: "\(error)")
        }
    }
}
