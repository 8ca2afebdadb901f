import Logging
import NIOPosix
import QuorumControl
import QuorumCore
import QuorumSystemd
import QuorumTestSupport
import Testing
@testable import QuorumNode

@Suite("Core adapter and driver: one node on loopback")
struct NodeDriverTests {
    /// A lone node on 127.0.0.1 (any free port; discovery on a loopback broadcast address).
    func node(in directory: String, port discoveryPort: UInt16) -> (NodeDriver, MultiThreadedEventLoopGroup) {
        var settings = NodeSettings(name: "solo", controlSocket: directory + "/control.sock", stateDirectory: directory + "/state")
        settings.address = "127.0.0.1"
        settings.port = 0
        settings.broadcastAddress = "127.255.255.255"
        settings.broadcastPort = discoveryPort
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        return (NodeDriver(settings: settings, loop: group.next(), logger: logger), group)
    }

    @Test("a started node answers status from the core, elects itself alone, and leaves with status 0")
    func startStatusLeave() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let (driver, group) = node(in: directory, port: UInt16.random(in: 40_000...60_000))
        try await run(driver)
        try await group.shutdownGracefully()
    }

    func run(_ driver: NodeDriver) async throws {
        let restored = try driver.loadState()
        #expect(restored == nil)
        try await driver.start(restored: restored, hooks: nil)
        let control = ControlAdapter(driver: driver)
        guard case .status(let first) = await control.answer(.status) else {
            Issue.record("status answers with a report")
            return
        }
        #expect(first.name == "solo" && first.address == "127.0.0.1" && first.port != 0)
        // A lone node is master within 2 s: wait on that, not for a fixed time.
        let elected = await eventually(within: .seconds(5)) {
            if case .status(let s) = await control.answer(.status) { return s.role == "master" && s.quorate }
            return false
        }
        #expect(elected)
        #expect(await control.answer(.peers) == .peers([]))
        #expect(await control.answer(.forget(peer: "nobody")) == .failure("no node named nobody is known"))
        guard case .accepted = await control.answer(.leave) else {
            Issue.record("leave is accepted")
            return
        }
        let ending = try await driver.ended.get()
        #expect(ending == NodeDriver.Ending(code: 0, message: nil, abrupt: false))
    }
}
