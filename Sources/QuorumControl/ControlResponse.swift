#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A node's answer to one ``ControlRequest``.
///
/// On the wire, one JSON line: `{"ok":true,"status":{…}}`, `{"ok":true,"peers":[…]}`,
/// `{"ok":true,"message":"…"}` or `{"ok":false,"error":"…"}`.
public enum ControlResponse: Equatable, Sendable {
    /// The answer to `status`.
    case status(StatusReport)
    /// The answer to `peers`: every other node the node knows.
    case peers([PeerReport])
    /// The request (`leave`, `forget`) was carried out; the message says what happened.
    case accepted(String)
    /// The request was refused or could not be read; the message says why.
    case failure(String)
    /// The answer to `reload`, applied or refused (then `ok` is false and `error` says why,
    /// for clients that know only failures).
    case reload(ReloadReport)
    /// The answer to `step-down`: done, refused or not confirmed (then `ok` is false).
    case stepDown(StepDownReport)

    /// `false` only for ``failure(_:)``.
    public var isOK: Bool {
        switch self {
        case .failure: false
        case .reload(let report): report.applied
        case .stepDown(let report): report.ok
        default: true
        }
    }

    private enum Keys: String, CodingKey {
        case ok, status, peers, message, error, reload, stepDown
    }

    private struct Wire: Codable {
        var response: ControlResponse

        init(_ response: ControlResponse) { self.response = response }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            if let report = try c.decodeIfPresent(ReloadReport.self, forKey: .reload) {
                response = .reload(report)
            } else if let report = try c.decodeIfPresent(StepDownReport.self, forKey: .stepDown) {
                response = .stepDown(report)
            } else if try c.decode(Bool.self, forKey: .ok) {
                if let status = try c.decodeIfPresent(StatusReport.self, forKey: .status) {
                    response = .status(status)
                } else if let peers = try c.decodeIfPresent([PeerReport].self, forKey: .peers) {
                    response = .peers(peers)
                } else {
                    response = .accepted(try c.decodeIfPresent(String.self, forKey: .message) ?? "")
                }
            } else {
                response = .failure(try c.decodeIfPresent(String.self, forKey: .error) ?? "request refused")
            }
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(response.isOK, forKey: .ok)
            switch response {
            case .status(let report): try c.encode(report, forKey: .status)
            case .peers(let peers): try c.encode(peers, forKey: .peers)
            case .accepted(let message): try c.encode(message, forKey: .message)
            case .failure(let message): try c.encode(message, forKey: .error)
            case .reload(let report):
                try c.encode(report, forKey: .reload)
                if !report.applied { try c.encode(report.line, forKey: .error) }
            case .stepDown(let report):
                try c.encode(report, forKey: .stepDown)
                if !report.ok { try c.encode(report.line, forKey: .error) }
            }
        }
    }

    /// The response as one JSON line, newline included.
    public func encodedLine() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(Wire(self))) + [UInt8(ascii: "\n")]
        } catch {
            // Only non-finite floating point values fail to encode, and these types hold none.
            preconditionFailure("ControlResponse failed to encode: \(error)")
        }
    }

    /// Parses one response line (a trailing newline is allowed).
    public static func parse(_ bytes: [UInt8]) throws(ControlProtocolError) -> ControlResponse {
        var line = bytes[...]
        if line.last == UInt8(ascii: "\n") { line = line.dropLast() }
        guard !line.isEmpty else { throw ControlProtocolError(.badResponse, "the node sent an empty answer") }
        do {
            return try JSONDecoder().decode(Wire.self, from: Data(line)).response
        } catch {
            throw ControlProtocolError(.badResponse, "the node's answer could not be read: \(describe(error))")
        }
    }

    /// A short, user-facing account of a decoding error (which key, what was wrong).
    private static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "not valid JSON" }
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "the answer" : keys.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing \"\(key.stringValue)\" in \(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "unexpected value at \(path(context))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "bad value at \(path(context))"
        @unknown default:
            return "not valid JSON"
        }
    }
}
