/// Who a node is. Sent in every announcement and handshake.
///
/// `name` is the operator's nickname and the key for re-entry; `instance` is random per
/// process start, so a restarted node is told apart from its old self; `birth` is the
/// wall-clock time of this start in milliseconds since the Unix epoch, fixed for the life
/// of the process and compared as a plain number by every node.
public struct NodeIdentity: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var instance: UInt64
    public var address: String
    public var port: UInt16
    public var birth: Int64

    public init(name: String, instance: UInt64, address: String, port: UInt16, birth: Int64) {
        self.name = name
        self.instance = instance
        self.address = address
        self.port = port
        self.birth = birth
    }

    public var description: String { "\(name)@\(endpoint)#\(String(instance, radix: 16))" }

    /// `address:port`, an IPv6 address in brackets (`[fd00::1]:6170`).
    public var endpoint: String { Self.endpoint(address, port) }

    /// `address:port`, an IPv6 address in brackets.
    public static func endpoint(_ address: String, _ port: UInt16) -> String {
        address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    /// `true` when this process started before `other` (birth, then instance): of two
    /// processes with one name, the earlier keeps it.
    public func startedBefore(_ other: NodeIdentity) -> Bool {
        birth != other.birth ? birth < other.birth : instance < other.instance
    }
}

/// How the wanted master is chosen.
public enum Metric: String, Sendable, CaseIterable {
    /// The oldest node (lowest birth time) is best.
    case age
    /// The node with the lowest TCP port is best (the original's `--use_port_instead_of_life_time`).
    case port

    /// A strict total order: `true` when `a` is a better master than `b`.
    ///
    /// Ties are broken by the other criterion, then by name, then by instance, so every node
    /// that knows the same identities picks the same best node.
    public func isBetter(_ a: NodeIdentity, than b: NodeIdentity) -> Bool {
        switch self {
        case .age:
            if a.birth != b.birth { return a.birth < b.birth }
            if a.port != b.port { return a.port < b.port }
        case .port:
            if a.port != b.port { return a.port < b.port }
            if a.birth != b.birth { return a.birth < b.birth }
        }
        if a.name != b.name { return a.name.utf8.lexicographicallyPrecedes(b.name.utf8) }
        return a.instance < b.instance
    }

    /// The best of a non-empty collection of identities.
    public func best<C: Collection>(of nodes: C) -> NodeIdentity? where C.Element == NodeIdentity {
        nodes.min { isBetter($0, than: $1) }
    }
}

/// Validation of the names the product accepts: 1 to 64 bytes of ASCII letters, digits, `-`, `_`, `.`.
public enum Names {
    public static let maximumLength = 64

    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= maximumLength else { return false }
        return bytes.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == 0x2D || b == 0x5F || b == 0x2E
        }
    }
}
