import Logging
import NIOCore
import ServiceLifecycle

/// Runs a started node until it leaves: on graceful shutdown (SIGTERM) it asks the node to
/// leave, and returns once the node has said goodbye and its hooks have run. A node that
/// stopped abruptly (it could not persist its vote) throws ``Stopped``, so that the service
/// group cancels the hook runner (killing a running hook) instead of waiting for it.
public struct NodeService: Service {
    let driver: NodeDriver

    public init(driver: NodeDriver) { self.driver = driver }

    public struct Stopped: Error, CustomStringConvertible {
        public var code: Int32
        public var description: String { "the node stopped abruptly (exit status \(code))" }
    }

    public func run() async throws {
        let driver = self.driver
        let ending = try await withGracefulShutdownHandler {
            try await driver.ended.get()
        } onGracefulShutdown: {
            _ = driver.leave()
        }
        if ending.abrupt { throw Stopped(code: ending.code) }
    }
}
