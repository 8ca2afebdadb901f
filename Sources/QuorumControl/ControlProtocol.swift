/// Constants and small rules of the control protocol spoken on a node's Unix-domain control socket.
///
/// One request per connection: the client writes a single line of JSON (at most
/// ``maximumRequestBytes`` bytes before the terminating newline), the server answers with one
/// line of JSON and closes the connection.
public enum ControlProtocol {
    /// The longest request line the server accepts, not counting the newline that ends it.
    public static let maximumRequestBytes = 4096

    /// The longest response line a client accepts, not counting the newline (a generous bound:
    /// a peers list of a few thousand nodes fits).
    public static let maximumResponseBytes = 4 * 1024 * 1024

    /// `Names.isValid`'s rule in words, for error messages.
    public static let nameRule = "1 to 64 bytes of letters, digits, '-', '_' or '.'"
}

/// Why a request or response line was rejected. `description` is a sentence fit to show a user
/// (and is what the server sends back in `{"ok":false,"error":…}`).
public struct ControlProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        case empty
        case tooLong
        case notUTF8
        case notJSON
        case notAnObject
        case missingCommand
        case unknownCommand
        case missingPeer
        case invalidPeerName
        /// A value of the wrong range or kind (a step-down timeout, a standby without `on`).
        case badValue
        case badResponse
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
