import QuorumCore
import Foundation
import QuorumControl
import Testing

@Suite("Control protocol: JSON shape")
struct JSONShapeTests {
    private func object(_ bytes: [UInt8]) throws -> [String: Any] {
        #expect(bytes.last == UInt8(ascii: "\n"), "a response is one newline-terminated line")
        #expect(bytes.dropLast().contains(UInt8(ascii: "\n")) == false)
        return try #require(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test func statusResponseHasEveryInterfaceKeyInCamelCase() throws {
        let response = try object(ControlResponse.status(Fixtures.quorateStatus).encodedLine())
        #expect(response["ok"] as? Bool == true)
        let status = try #require(response["status"] as? [String: Any])
        let required: Set = [
            "name", "cluster", "role", "master", "quorate", "epoch", "clusterSize", "majority", "connected", "lost", "metric",
        ]
        #expect(required.isSubset(of: Set(status.keys)))
        #expect(status["name"] as? String == "B")
        #expect(status["master"] as? String == "A")
        #expect(status["quorate"] as? Bool == true)
        #expect(status["epoch"] as? Int == 7)
        #expect(status["clusterSize"] as? Int == 3)
        #expect(status["metric"] as? String == "age")
        #expect(status["instance"] as? String == "1f2e3d4c5b6a7988")
        #expect(status["birth"] as? Int64 == 1_700_000_000_123)
        #expect(status["masterAddress"] as? String == "10.0.0.1:6170")
    }

    @Test func missingMasterAndExtrasAreEncodedAsNullNotLeftOut() throws {
        let response = try object(ControlResponse.status(Fixtures.lonelyStatus).encodedLine())
        let status = try #require(response["status"] as? [String: Any])
        #expect(status.keys.contains("master"))
        #expect(status["master"] is NSNull)
        for extra in ["masterAddress", "address", "port", "birth", "instance", "uptimeSeconds", "dispatched",
                      "protocolVersion", "clusterProtocolVersion", "protocolBehind"] {
            #expect(status[extra] is NSNull, "\(extra) should be null")
        }
        #expect(status["quorate"] as? Bool == false)
    }

    @Test func peersAreAnArrayWithInterfaceKeysAndIntegerBirth() throws {
        let response = try object(ControlResponse.peers(Fixtures.peers).encodedLine())
        let peers = try #require(response["peers"] as? [[String: Any]])
        #expect(peers.count == 2)
        for key in ["name", "address", "port", "state", "birth", "instance", "lastHeardMillisecondsAgo", "protocolVersion"] {
            #expect(peers[1].keys.contains(key), "peer key \(key)")
        }
        #expect(peers[0]["state"] as? String == "connected")
        #expect(peers[1]["state"] as? String == "lost")
        #expect(peers[0]["birth"] as? Int64 == 1_700_000_000_000)
        #expect(peers[0]["port"] as? Int == 6170)
        #expect(peers[1]["instance"] is NSNull)
        #expect(peers[0]["lastHeardMillisecondsAgo"] as? Int == 120)
    }

    @Test func aRefusedReloadIsAFailureToOlderClientsAndCarriesItsReport() throws {
        let report = ReloadReport(applied: false, errors: ["cluster a -> b needs a restart", "bad.conf:3: x"])
        let response = try object(ControlResponse.reload(report).encodedLine())
        #expect(response["ok"] as? Bool == false)
        #expect(response["error"] as? String == "reload refused: cluster a -> b needs a restart; bad.conf:3: x")
        #expect((response["reload"] as? [String: Any])?["applied"] as? Bool == false)
        #expect(try ControlRequest.parse(Array(#"{"command":"reload"}"#.utf8)) == .reload)
        #expect(ReloadReport(applied: true).line == "reloaded: no changes")
    }

    @Test func failureCarriesOkFalseAndError() throws {
        let response = try object(ControlResponse.failure("no such peer \"Z\"").encodedLine())
        #expect(response["ok"] as? Bool == false)
        #expect(response["error"] as? String == "no such peer \"Z\"")
    }

    @Test(arguments: [
        ControlResponse.status(Fixtures.quorateStatus), .status(Fixtures.lonelyStatus), .peers(Fixtures.peers),
        .peers([]), .accepted("B told 2 peers it is leaving"), .accepted(""), .failure("refused"),
        .reload(ReloadReport(applied: true, changed: ["log-level": ["info", "debug"]], warnings: ["master-hook /x: file not found"])),
        .reload(ReloadReport(applied: false, errors: ["cluster a -> b needs a restart"])),
    ])
    func responsesSurviveARoundTrip(_ response: ControlResponse) throws {
        #expect(try ControlResponse.parse(response.encodedLine()) == response)
    }

    @Test func aStatusWithOnlyTheInterfaceFieldsDecodes() throws {
        let line = #"{"ok":true,"status":{"name":"A","cluster":"c","role":"master","master":"A","quorate":true,"epoch":1,"clusterSize":1,"majority":1,"connected":0,"lost":0,"metric":"age"}}"#
        let response = try ControlResponse.parse(Array(line.utf8))
        guard case .status(let status) = response else { Issue.record("not a status: \(response)"); return }
        #expect(status.master == "A")
        #expect(status.instance == nil)
    }

    @Test func unreadableResponsesAreRejectedWithAReason() {
        #expect(throws: ControlProtocolError.self) { try ControlResponse.parse(Array("hello\n".utf8)) }
        #expect(throws: ControlProtocolError.self) { try ControlResponse.parse([]) }
        do {
            _ = try ControlResponse.parse(Array(#"{"ok":true,"status":{"name":"A"}}"#.utf8))
            Issue.record("a status without its fields must not decode")
        } catch {
            #expect(error.kind == .badResponse)
            #expect(error.message.contains("cluster"), "names the missing key: \(error.message)")
        }
    }
}

@Suite("Control protocol: requests")
struct RequestTests {
    private func parse(_ text: String) throws(ControlProtocolError) -> ControlRequest {
        try ControlRequest.parse(Array(text.utf8))
    }

    private func rejection(_ bytes: [UInt8]) -> ControlProtocolError? {
        do {
            _ = try ControlRequest.parse(bytes)
            return nil
        } catch {
            return error
        }
    }

    @Test func theFourCommandsParse() throws {
        #expect(try parse(#"{"command":"status"}"#) == .status)
        #expect(try parse(#"{"command":"peers"}"# + "\n") == .peers)
        #expect(try parse(#"{"command":"leave"}"# + "\r\n") == .leave)
        #expect(try parse(#"{"command":"forget","peer":"C"}"#) == .forget(peer: "C"))
        #expect(try parse(#" { "peer" : "node-1.a_b", "command" : "forget", "extra": 1 } "#) == .forget(peer: "node-1.a_b"))
    }

    @Test(arguments: [ControlRequest.status, .peers, .leave, .forget(peer: "C"), .forget(peer: String(repeating: "x", count: 64)),
                      .stepDown(to: nil, timeoutMilliseconds: 10_000), .stepDown(to: "C", timeoutMilliseconds: 2_500),
                      .standby(on: true, untilRestart: false), .standby(on: false, untilRestart: true)])
    func encodedRequestsParseBack(_ request: ControlRequest) throws {
        let line = request.encodedLine()
        #expect(line.last == UInt8(ascii: "\n"))
        #expect(try ControlRequest.parse(line) == request)
    }

    @Test func theWireFormIsTheDocumentedOne() {
        #expect(String(decoding: ControlRequest.status.encodedLine(), as: UTF8.self) == "{\"command\":\"status\"}\n")
        #expect(String(decoding: ControlRequest.forget(peer: "C").encodedLine(), as: UTF8.self) == "{\"command\":\"forget\",\"peer\":\"C\"}\n")
    }

    @Test func garbageIsNotJSON() {
        #expect(rejection(Array("hello there".utf8))?.kind == .notJSON)
        #expect(rejection(Array("{\"command\":".utf8))?.kind == .notJSON)
    }

    @Test func emptyAndNonObjectRequestsAreRejected() {
        #expect(rejection([])?.kind == .empty)
        #expect(rejection(Array("\n".utf8))?.kind == .empty)
        #expect(rejection(Array("[\"status\"]".utf8))?.kind == .notAnObject)
        #expect(rejection(Array("\"status\"".utf8))?.kind == .notAnObject)
        for fragment in ["null", "42", "true", "[]", "[{\"command\":\"status\"}]"] {
            #expect(rejection(Array(fragment.utf8))?.kind == .notAnObject, "\(fragment)")
        }
        #expect(rejection(Array("{\"command\":\"status\"} x".utf8))?.kind == .notJSON)
        #expect((try? ControlRequest.parse(Array(#"{"command":"forget","peer":"C","extra":[1,{"a":null}]}"#.utf8))) == .forget(peer: "C"))
        #expect(rejection(Array("{}".utf8))?.kind == .missingCommand)
        #expect(rejection(Array(#"{"command":42}"#.utf8))?.kind == .missingCommand)
    }

    @Test func invalidUTF8IsRejectedBeforeJSON() {
        let bytes: [UInt8] = Array(#"{"command":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)
        #expect(rejection(bytes)?.kind == .notUTF8)
    }

    @Test func oversizedRequestsAreRejectedWhateverTheirContent() {
        let padding = String(repeating: " ", count: ControlProtocol.maximumRequestBytes)
        let error = rejection(Array((#"{"command":"status"}"# + padding).utf8))
        #expect(error?.kind == .tooLong)
        #expect(error?.message.contains("4096") == true)
        // Exactly at the limit is fine.
        let fitting = #"{"command":"status"}"#
        let exact = fitting + String(repeating: " ", count: ControlProtocol.maximumRequestBytes - fitting.utf8.count)
        #expect(rejection(Array(exact.utf8)) == nil)
    }

    @Test func unknownCommandsAreNamedInTheError() {
        let error = rejection(Array(#"{"command":"reboot"}"#.utf8))
        #expect(error?.kind == .unknownCommand)
        #expect(error?.message == #"unknown command "reboot": expected status, peers, leave, forget, reload, watch, step-down or standby"#)
    }

    @Test("step-down and standby: defaults, and bad values refused with a message")
    func stepDownAndStandbyValues() throws {
        #expect(try parse(#"{"command":"step-down"}"#) == .stepDown(to: nil, timeoutMilliseconds: 10_000))
        #expect(rejection(Array(#"{"command":"step-down","timeoutMs":500}"#.utf8))?.kind == .badValue)
        #expect(rejection(Array(#"{"command":"step-down","timeoutMs":2500.5}"#.utf8))?.kind == .badValue)
        #expect(rejection(Array(#"{"command":"step-down","to":"a b"}"#.utf8))?.kind == .invalidPeerName)
        #expect(rejection(Array(#"{"command":"standby"}"#.utf8))?.kind == .badValue)
        #expect(try parse(#"{"command":"standby","on":true}"#) == .standby(on: true, untilRestart: false))
    }

    @Test func forgetNeedsAValidPeerName() {
        #expect(rejection(Array(#"{"command":"forget"}"#.utf8))?.kind == .missingPeer)
        #expect(rejection(Array(#"{"command":"forget","peer":7}"#.utf8))?.kind == .missingPeer)
        for bad in ["", "a b", "a/b", "ü", String(repeating: "x", count: 65), "semi;colon"] {
            let line = try! JSONSerialization.data(withJSONObject: ["command": "forget", "peer": bad])
            #expect(rejection(Array(line))?.kind == .invalidPeerName, "peer \(bad.debugDescription)")
        }
    }

    @Test func nodeNamesFollowTheInterfaceRule() {
        #expect(Names.isValid("A"))
        #expect(Names.isValid("host-1.example_x"))
        #expect(Names.isValid(String(repeating: "n", count: 64)))
        #expect(!Names.isValid(String(repeating: "n", count: 65)))
        #expect(!Names.isValid(""))
        #expect(!Names.isValid("tab\there"))
    }
}
