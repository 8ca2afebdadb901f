import QuorumControl
import Testing

@Suite("Human-readable output")
struct RenderingTests {
    @Test func statusTableAlignsValuesAfterTheLongestKey() {
        #expect(Fixtures.quorateStatus.table == """
            name:         B
            cluster:      quorum
            role:         slave
            master:       A (10.0.0.1:6170)
            quorate:      yes
            epoch:        7
            cluster size: 3
            majority:     2
            connected:    2
            lost:         0
            dispatched:   0
            metric:       age
            address:      10.0.0.2:6170
            birth:        2023-11-14T22:13:20.123Z
            instance:     1f2e3d4c5b6a7988
            uptime:       1h 2m 5s

            """)
    }

    @Test func statusTableNamesTheMembersOnAnOlderProtocol() {
        var status = Fixtures.quorateStatus
        status.protocolVersion = 2
        status.clusterProtocolVersion = 2
        status.protocolBehind = []
        #expect(status.table.hasSuffix("protocol:     2\n"))
        status.clusterProtocolVersion = 1
        status.protocolBehind = ["A", "C"]
        #expect(status.table.hasSuffix("protocol:     2 (the cluster speaks 1: A, C behind)\n"))
    }

    @Test func statusTableSaysNoneForAMissingMasterAndSkipsUnknownExtras() {
        #expect(Fixtures.lonelyStatus.table == """
            name:         C
            cluster:      quorum
            role:         no-quorum
            master:       none
            quorate:      no
            epoch:        3
            cluster size: 3
            majority:     2
            connected:    0
            lost:         2
            metric:       port

            """)
    }

    @Test func statusTableSaysWhyThereIsNoMasterWhenTheNodeSaid() {
        var status = Fixtures.lonelyStatus
        status.noMasterReason = "no-quorum"
        #expect(status.table.contains("master:       none (no quorum: too few members alive for a majority)\n"))
        // A reason a newer node knows and this client does not is shown as it came.
        status.noMasterReason = "something-new"
        #expect(status.table.contains("master:       none (something-new)\n"))
    }

    @Test func peersTableHasAlignedColumnsAndUTCBirth() {
        #expect(PeerReport.table(Fixtures.peers) == """
            NAME              ADDRESS          PORT  STATE      BIRTH
            A                 10.0.0.1         6170  connected  2023-11-14T22:13:20.000Z
            long-node.name_2  192.168.100.200  8080  lost       1970-01-01T00:00:00.000Z

            """)
    }

    @Test func anEmptyPeersTableIsJustTheHeader() {
        #expect(PeerReport.table([]) == "NAME  ADDRESS  PORT  STATE  BIRTH\n")
    }

    @Test func iso8601HandlesLeapDaysAndTimesBeforeTheEpoch() {
        #expect(ISO8601.utc(millisecondsSinceEpoch: 951_782_400_000) == "2000-02-29T00:00:00.000Z")
        #expect(ISO8601.utc(millisecondsSinceEpoch: 4_107_542_399_999) == "2100-02-28T23:59:59.999Z")
        #expect(ISO8601.utc(millisecondsSinceEpoch: -1) == "1969-12-31T23:59:59.999Z")
        // Every millisecond of a second comes out as itself (no float rounding down).
        for ms in Int64(1_796_246_000_000)..<1_796_246_001_000 {
            #expect(ISO8601.utc(millisecondsSinceEpoch: ms).hasSuffix(String(format: ".%03dZ", Int(ms % 1000))))
        }
    }
}
