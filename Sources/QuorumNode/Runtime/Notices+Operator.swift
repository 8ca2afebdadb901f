import Logging

/// The log lines of the operator's preferences: standby and the health check. Only changes
/// are logged (a check that keeps passing or failing writes nothing more).
extension Notices {
    func standbyRestored() {
        logger.notice("\(name) starts in standby (recorded in the state directory; 'quorumctl standby off' ends it)", metadata: metadata(.standbyChanged))
    }

    func standbyChanged(on: Bool, persistent: Bool) {
        let line = on ? "\(name) is in standby\(persistent ? "" : " until it restarts"): it votes but may not be master"
            : "\(name) is out of standby: it may be master again"
        logger.notice("\(line)", metadata: metadata(.standbyChanged))
    }

    func checkFailing(failures: Int, result: String, output: String?) {
        let shown = output.map { ": \($0)" } ?? ""
        logger.warning("check failed \(failures) time\(failures == 1 ? "" : "s") (\(result)\(shown)); \(name) may not be master",
                       metadata: metadata(.checkFailing))
    }

    func checkPassing(first: Bool) {
        logger.notice("\(first ? "check passes" : "check passing again"); \(name) may be master", metadata: metadata(.checkPassing))
    }

    func checkOutput(_ output: String, result: String) {
        logger.debug("check \(result): \(output)", metadata: metadata())
    }

    private func metadata(_ id: MessageID) -> Logger.Metadata {
        var m = metadata()
        m["MESSAGE_ID"] = "\(id.rawValue)"
        return m
    }
}
