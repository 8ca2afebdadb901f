import Logging
import NIOCore
import QuorumControl
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

    /// Answers control-socket requests from the node's state.
    public static func controlHandler(_ driver: NodeDriver) -> @Sendable (ControlRequest) async -> ControlResponse {
        { request in
            do {
                switch request {
                case .status:
                    guard let report = try await driver.statusReport().get() else { return .failure("the node is starting") }
                    return .status(report)
                case .peers:
                    return .peers(try await driver.peerReports().get())
                case .leave:
                    let code = try await driver.leave().get()
                    return .accepted("\(driver.settings.name) has told its peers and stopped (exit status \(code))")
                case .forget(let peer):
                    switch try await driver.forget(peer).get() {
                    case .forgotten: return .accepted("\(peer) forgotten; it no longer counts toward the cluster size")
                    case .unknown: return .failure("no node named \(peer) is known")
                    case .stillConnected: return .failure("\(peer) is connected; only lost or dispatched nodes can be forgotten")
                    }
                }
            } catch {
                return .failure("the node could not answer: \(error)")
            }
        }
    }
}
