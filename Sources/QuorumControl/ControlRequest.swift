#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import QuorumCore

/// What a client asks a node over the control socket.
///
/// On the wire: one line of JSON, e.g. `{"command":"status"}` or `{"command":"forget","peer":"C"}`.
public enum ControlRequest: Hashable, Sendable {
    /// The node's own view: role, master, quorum, epoch (answered with ``ControlResponse/status(_:)``).
    case status
    /// The other nodes this node knows (answered with ``ControlResponse/peers(_:)``).
    case peers
    /// Graceful dispatch: the node tells its peers and stops (answered with ``ControlResponse/accepted(_:)``).
    case leave
    /// Drop a lost or dispatched peer from the membership, so it no longer counts toward the majority.
    case forget(peer: String)
    /// Read the configuration again and apply it, all or nothing (answered with ``ControlResponse/reload(_:)``).
    case reload
    /// Stream the node's events, one ``WatchEvent`` per line, beginning with a snapshot, for
    /// as long as the client keeps the connection open.
    case watch
    /// A planned step-down of the master, to `to` or to the best eligible member; the old
    /// master stays out of elections for at most `timeoutMilliseconds` (answered with
    /// ``ControlResponse/stepDown(_:)`` once a new master is known, refused, or the time is up).
    case stepDown(to: String?, timeoutMilliseconds: Int)
    /// Standby on or off: a voting member that may not be master. Persisted in the state
    /// directory unless `untilRestart`.
    case standby(on: Bool, untilRestart: Bool)

    /// The step-down timeout without `--timeout`, and its range.
    public static let defaultStepDownMilliseconds = 10_000
    public static let stepDownMilliseconds = 1_000...300_000

    /// The command words on the wire: one per case, written and read only through this type,
    /// so that server and client never compare strings.
    public enum Command: String, CaseIterable, Sendable {
        case status, peers, leave, forget, reload, watch
        case stepDown = "step-down"
        case standby
    }

    /// The command word on the wire.
    public var command: Command {
        switch self {
        case .status: .status
        case .peers: .peers
        case .leave: .leave
        case .forget: .forget
        case .reload: .reload
        case .watch: .watch
        case .stepDown: .stepDown
        case .standby: .standby
        }
    }

    /// The request as one JSON line, newline included, ready to write to the socket.
    public func encodedLine() -> [UInt8] {
        var object: [String: RequestValue] = ["command": .text(command.rawValue)]
        switch self {
        case .forget(let peer): object["peer"] = .text(peer)
        case .stepDown(let to, let timeout):
            if let to { object["to"] = .text(to) }
            object["timeoutMs"] = .number(timeout)
        case .standby(let on, let untilRestart):
            object["on"] = .flag(on)
            object["untilRestart"] = .flag(untilRestart)
        default: break
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Strings, integers and booleans always encode; the force is a programmer-error trap only.
        let data = try! encoder.encode(object)
        return Array(data) + [UInt8(ascii: "\n")]
    }

    /// Parses one request line. A trailing `\n` (or `\r\n`) is allowed and ignored.
    ///
    /// Rejects, each with a message a user can act on: an empty line, more than
    /// ``ControlProtocol/maximumRequestBytes`` bytes, bytes that are not UTF-8, text that is
    /// not JSON or not a JSON object, a missing or unknown `command`, and for `forget` a missing
    /// `peer` or one that is not a valid node name. Unknown extra keys are ignored.
    public static func parse(_ bytes: [UInt8]) throws(ControlProtocolError) -> ControlRequest {
        var line = bytes[...]
        if line.last == UInt8(ascii: "\n") { line = line.dropLast() }
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        guard line.count <= ControlProtocol.maximumRequestBytes else {
            throw ControlProtocolError(
                .tooLong, "request is \(line.count) bytes, longer than the limit of \(ControlProtocol.maximumRequestBytes)")
        }
        guard !line.isEmpty else {
            throw ControlProtocolError(.empty, "empty request: expected one line of JSON such as {\"command\":\"status\"}")
        }
        guard String(validating: line, as: UTF8.self) != nil else {
            throw ControlProtocolError(.notUTF8, "request is not valid UTF-8")
        }
        let object: RequestObject
        do {
            object = try JSONDecoder().decode(RequestObject.self, from: Data(line))
        } catch DecodingError.typeMismatch, DecodingError.valueNotFound {
            // Valid JSON (the whole text parses first), but not an object.
            throw ControlProtocolError(.notAnObject, "request must be a JSON object such as {\"command\":\"status\"}")
        } catch {
            throw ControlProtocolError(.notJSON, "request is not valid JSON: expected a line such as {\"command\":\"status\"}")
        }
        guard let command = object.command else {
            throw ControlProtocolError(.missingCommand, "request has no \"command\" string")
        }
        guard let known = Command(rawValue: command) else {
            let words = Command.allCases.map(\.rawValue)
            throw ControlProtocolError(
                .unknownCommand,
                "unknown command \(quoted(command)): expected \(words.dropLast().joined(separator: ", ")) or \(words.last!)")
        }
        switch known {
        case .status: return .status
        case .peers: return .peers
        case .leave: return .leave
        case .reload: return .reload
        case .watch: return .watch
        case .stepDown:
            if let to = object.to, !Names.isValid(to) {
                throw ControlProtocolError(.invalidPeerName, "invalid member name \(quoted(to)): a node name is \(ControlProtocol.nameRule)")
            }
            let timeout = object.timeoutMs ?? defaultStepDownMilliseconds
            guard stepDownMilliseconds.contains(timeout), object.timeoutMs != nil || !object.hasTimeout else {
                throw ControlProtocolError(.badValue, "step-down \"timeoutMs\" must be 1000 to 300000 (1s to 300s)")
            }
            return .stepDown(to: object.to, timeoutMilliseconds: timeout)
        case .standby:
            guard let on = object.on else {
                throw ControlProtocolError(.badValue, "standby needs \"on\": true or false")
            }
            return .standby(on: on, untilRestart: object.untilRestart ?? false)
        case .forget:
            guard let peer = object.peer else {
                throw ControlProtocolError(.missingPeer, "forget needs a \"peer\" string naming the node to forget")
            }
            guard Names.isValid(peer) else {
                throw ControlProtocolError(
                    .invalidPeerName,
                    "invalid peer name \(quoted(peer)): a node name is \(ControlProtocol.nameRule)")
            }
            return .forget(peer: peer)
        }
    }
}

/// The keys of a request object that matter; others, and values of other types, are ignored
/// (a `command` that is not a string counts as missing).
private struct RequestObject: Decodable {
    var command: String?
    var peer: String?
    var to: String?
    var timeoutMs: Int?
    var on: Bool?
    var untilRestart: Bool?
    /// A `timeoutMs` key was given (perhaps not as a whole number).
    var hasTimeout = false

    enum Key: String, CodingKey { case command, peer, to, timeoutMs, on, untilRestart }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        command = try? c.decode(String.self, forKey: .command)
        peer = try? c.decode(String.self, forKey: .peer)
        to = try? c.decode(String.self, forKey: .to)
        timeoutMs = try? c.decode(Int.self, forKey: .timeoutMs)
        hasTimeout = c.contains(.timeoutMs)
        on = try? c.decode(Bool.self, forKey: .on)
        untilRestart = try? c.decode(Bool.self, forKey: .untilRestart)
    }
}

/// A value of a request object as the client writes it.
private enum RequestValue: Encodable {
    case text(String)
    case number(Int)
    case flag(Bool)

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .text(let s): try c.encode(s)
        case .number(let n): try c.encode(n)
        case .flag(let b): try c.encode(b)
        }
    }
}

/// Quotes a user-supplied string for an error message, shortened so a huge value cannot flood a log.
func quoted(_ text: String, limit: Int = 80) -> String {
    let shown = text.count > limit ? String(text.prefix(limit)) + "…" : text
    var result = "\""
    for scalar in shown.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F:
            result += "\\u{\(String(scalar.value, radix: 16))}"
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}
