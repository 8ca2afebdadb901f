import QuorumControl
import QuorumControlServer
import Testing
@testable import QuorumNode

@Suite("Watch hub")
struct WatchHubTests {
    func event(_ type: WatchEvent.Kind, _ epoch: UInt64 = 1) -> WatchEvent {
        WatchEvent(type: type, node: "B", instance: "ab", epoch: epoch, millisecondsSinceEpoch: 1_700_000_000_000)
    }

    func lines(_ feed: LineFeed, upTo count: Int) async -> [WatchEvent] {
        var got: [WatchEvent] = []
        for await line in feed.lines {
            got.append(try! WatchEvent.parse(Array(line.dropLast())))
            feed.consumed()
            if got.count == count { break }
        }
        return got
    }

    @Test("A watcher gets its snapshot first, then every event in order")
    func order() async throws {
        let hub = WatchHub()
        let feed = try hub.subscribe(snapshot: event(.snapshot)).get()
        hub.publish(event(.peerLost))
        hub.publish(event(.role, 2))
        let got = await lines(feed, upTo: 3)
        #expect(got.map(\.type) == [.snapshot, .peerLost, .role])
        #expect(got.last?.epoch == 2)
    }

    @Test("A reader that falls behind gets one overflow line and its watch ends; publishing never waits")
    func overflow() async throws {
        let hub = WatchHub()
        let slow = try hub.subscribe(snapshot: event(.snapshot)).get()
        let fast = try hub.subscribe(snapshot: event(.snapshot)).get()
        var fastSeen = 0
        for i in 0..<(WatchHub.maximumQueued + 10) {
            hub.publish(event(.peerJoined, UInt64(i)))
            // The fast reader keeps up.
            for await _ in fast.lines { fast.consumed(); fastSeen += 1; break }
        }
        #expect(hub.count == 1, "the slow watcher is gone, the fast one stays")
        var slowLines: [WatchEvent] = []
        for await line in slow.lines { slowLines.append(try WatchEvent.parse(Array(line.dropLast()))) }
        #expect(slowLines.count == WatchHub.maximumQueued)
        #expect(slowLines.first?.type == .snapshot && slowLines.last?.type == .overflow)
        #expect(fastSeen == WatchHub.maximumQueued + 10)
    }

    @Test("At most a bounded number of watchers; a finished watch frees its place")
    func bounded() async throws {
        let hub = WatchHub()
        var feeds: [LineFeed] = []
        for _ in 0..<WatchHub.maximumWatchers { feeds.append(try hub.subscribe(snapshot: event(.snapshot)).get()) }
        guard case .failure(let refusal) = hub.subscribe(snapshot: event(.snapshot)) else {
            Issue.record("one watcher too many was accepted")
            return
        }
        #expect(refusal.message == "too many watchers (at most \(WatchHub.maximumWatchers) at once)")
        feeds[0].cancel()
        #expect(hub.count == WatchHub.maximumWatchers - 1)
        _ = try hub.subscribe(snapshot: event(.snapshot)).get()
        hub.finishAll()
        #expect(hub.count == 0)
    }
}
