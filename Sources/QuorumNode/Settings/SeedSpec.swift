#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One `--peer HOST[:PORT]` entry: a seed to dial for discovery, not a member.
///
/// Accepted: `host`, `host:port`, `192.0.2.1`, `192.0.2.1:6170`, `2001:db8::1` (a bare IPv6
/// literal takes no port), `[2001:db8::1]`, `[2001:db8::1]:6170`, `[fe80::1%eth0]:6170`.
/// Literals are checked by the system's own parser (`getaddrinfo` with `AI_NUMERICHOST`,
/// which knows zones); names by the rules of DNS host names. The port defaults to the
/// node's own peer port.
public struct SeedSpec: Sendable, Equatable, CustomStringConvertible {
    /// The entry as written.
    public var text: String
    /// A name to resolve, or an IPv4/IPv6 literal (an IPv6 one without brackets, with its zone).
    public var host: String
    /// Whether `host` is an IP literal (it is resolved without asking DNS).
    public var isLiteral: Bool
    /// `nil`: this node's own peer port.
    public var port: UInt16?

    public var description: String { text }

    /// The longest DNS name (RFC 1035, without the final dot).
    public static let maximumNameLength = 253

    /// Parses one entry; the error says what is wrong with it, without naming it.
    public static func parse(_ raw: String) throws(SettingsError) -> SeedSpec {
        let text = raw.trimmingWhitespace()
        guard !text.isEmpty else { throw SettingsError("the entry is empty") }
        var host: String
        var portText: String? = nil
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw SettingsError("'[' without ']'") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw SettingsError("expected ':PORT' after ']'") }
                portText = String(rest.dropFirst())
            }
            guard host.contains(":") else { throw SettingsError("brackets hold an IPv6 address, not '\(host)'") }
        } else if text.filter({ $0 == ":" }).count >= 2 {
            host = text  // a bare IPv6 literal: no port (it would be ambiguous)
        } else if let colon = text.firstIndex(of: ":") {
            host = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
        } else {
            host = text
        }
        guard !host.isEmpty else { throw SettingsError("the host is empty") }

        var port: UInt16? = nil
        if let portText {
            guard let n = Int(portText), n >= 1, n <= 65535 else {
                throw SettingsError("'\(portText)' is not a peer port (1-65535)")
            }
            port = UInt16(n)
        }

        let literal: Bool
        if host.contains(":") {
            guard let family = numericFamily(host), family == AF_INET6 else {
                throw SettingsError("'\(host)' is not an IPv6 address")
            }
            if isLinkLocalWithoutZone(host) {
                throw SettingsError("\(host) is link-local: name the interface, e.g. [\(host)%eth0]:6170")
            }
            literal = true
        } else if numericFamily(host) == AF_INET {
            literal = true
        } else {
            try checkHostName(host)
            if host.split(separator: ".").allSatisfy({ $0.allSatisfy(\.isNumber) }) {
                throw SettingsError("'\(host)' is not an IPv4 address (four numbers 0-255, as 192.0.2.1)")
            }
            literal = false
        }
        return SeedSpec(text: text, host: host, isLiteral: literal, port: port)
    }

    /// `AF_INET` for a dotted-quad IPv4 address, `AF_INET6` for an IPv6 one the system
    /// accepts (zones included), else nil. (Not `getaddrinfo` for IPv4: it also takes the
    /// old short forms, such as `10.1` for 10.0.0.1.)
    static func numericFamily(_ host: String) -> Int32? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return AF_INET }
        guard host.contains(":") else { return nil }
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST
        hints.ai_family = AF_INET6
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        return first.pointee.ai_family
    }

    /// `fe80::/10` with no `%zone`: unusable, the kernel cannot tell which link is meant.
    static func isLinkLocalWithoutZone(_ host: String) -> Bool {
        guard !host.contains("%") else { return false }
        var address = in6_addr()
        guard inet_pton(AF_INET6, host, &address) == 1 else { return false }
        return withUnsafeBytes(of: &address) { bytes in bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 }
    }

    /// A DNS host name: at most 253 bytes, labels of 1-63 letters, digits, '-' or '_' that
    /// neither start nor end with '-'.
    static func checkHostName(_ host: String) throws(SettingsError) {
        let name = host.hasSuffix(".") ? String(host.dropLast()) : host
        guard name.utf8.count <= maximumNameLength else {
            throw SettingsError("the host name is \(name.utf8.count) bytes long (at most \(maximumNameLength))")
        }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.utf8.count <= 63 else {
                throw SettingsError("'\(host)' is not a host name (a label is empty or longer than 63 bytes)")
            }
            let allowed = label.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") }
            guard allowed, !label.hasPrefix("-"), !label.hasSuffix("-") else {
                throw SettingsError("'\(host)' is not a host name or an IP address")
            }
        }
    }
}
