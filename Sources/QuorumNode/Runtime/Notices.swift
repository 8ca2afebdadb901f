import Logging
import QuorumControl
import QuorumCore
import QuorumSystemd

/// What the node tells its operator: log lines with their journal fields, and systemd's
/// one-line `STATUS=`. The other parts report here and never format a line themselves.
///
/// Concurrency: confined to the node's event loop (owned by ``CoreAdapter``, shared with
/// ``Transport``); not `Sendable`.
final class Notices {

    let name: String
    let cluster: String
    let logger: Logger
    let notifier: SystemdNotifier
    /// Where the log lines go; under journald a fatal reason is an entry with fields, else
    /// quorumd prints it as its last line on standard error.
    let logOutput: LogOutput
    /// The core's role and master, for every line's fields; nil until the core runs.
    var snapshot: () -> (role: Role, master: MasterClaim?)? = { nil }
    /// The watchers of `quorumctl watch` (every event below goes to them too).
    let watch = WatchHub()
    /// The epoch each watch event carries, and this start's instance (set once the core runs).
    var epoch: () -> UInt64 = { 0 }
    var instance = ""
    /// Why the node must stop, for the operator (set by a notice just before `.exit`).
    private(set) var exitMessage: String?
    /// Frames and datagrams dropped because they did not open with the cluster key.
    private(set) var rejectedFrames = 0
    private var dropped = DropCounter()
    private var seedWarnings: [String: Instant] = [:]
    private var statusLine = ""

    /// The node's Prometheus series that count what is said here.
    let metrics: NodeMetrics?
    /// When this node saw its master go (for the failover histogram).
    private var masterGoneAt: Instant?

    init(name: String, cluster: String, logger: Logger, notifier: SystemdNotifier, logOutput: LogOutput, metrics: NodeMetrics? = nil) {
        self.metrics = metrics
        self.name = name
        self.cluster = cluster
        self.logger = logger
        self.notifier = notifier
        self.logOutput = logOutput
    }

    func metadata() -> Logger.Metadata {
        var m: Logger.Metadata = ["quorum.node": "\(name)", "quorum.cluster": "\(cluster)"]
        if let state = snapshot() {
            m["quorum.role"] = "\(state.role.rawValue)"
            if let master = state.master {
                m["quorum.master"] = "\(master.name)"
                m["quorum.epoch"] = "\(master.epoch)"
            }
        }
        return m
    }

    // MARK: - systemd

    /// `STATUS=`: sent only when the line changes.
    func publish(_ status: QuorumInstance.Status) {
        let line = Self.statusLine(status)
        guard line != statusLine else { return }
        statusLine = line
        notifier.status(shownStatus)
    }

    /// The status line with a failed reload's reason, until a reload succeeds.
    private var shownStatus: String {
        reloadFailure.map { statusLine + "; last reload failed: " + $0 } ?? statusLine
    }
    private var reloadFailure: String?

    /// A reload is over: `READY=1` (systemd waits for it after `RELOADING=1`) with the status line.
    func reloadFinished(failure: String?) {
        reloadFailure = failure
        notifier.send("READY=1\nSTATUS=" + SystemdNotifier.oneLine(shownStatus))
    }

    static func statusLine(_ s: QuorumInstance.Status) -> String {
        var line = "\(s.role.rawValue); master \(s.master ?? "none") (epoch \(s.epoch)); \(s.connected + 1)/\(s.clusterSize) members up, \(s.lost) lost\(s.quorate ? "" : "; no quorum")"
        // What keeps this node from being master, where `systemctl status` shows it.
        if s.eligibility.standby { line += "; standby" }
        if s.eligibility.health == .failing { line += "; check failing" }
        return line
    }

    func stopping() { notifier.stopping() }

    // MARK: - Dropped input

    /// Dropped input of one kind: logged at most once every 10 seconds.
    func drop(_ kind: String, error: String) {
        metrics?.dropped(kind)
        dropped.note(kind, error: error, logger: logger)
    }

    /// A frame or datagram that failed to open or decode: counted, and logged at most once
    /// every 10 seconds.
    func rejectedFrame(from peer: String?, error: String) {
        rejectedFrames += 1
        metrics?.dropped("auth")
        dropped.note("frame", error: "\(peer.map { "from \($0): " } ?? "")\(error) (\(rejectedFrames) rejected so far)", logger: logger)
    }

    // MARK: - The transport's lines

    func listening(address: String, advertised: String, port: UInt16) {
        logger.info("\(name) listens on \(NodeIdentity.endpoint(address, port)), advertises \(NodeIdentity.endpoint(advertised, port))", metadata: metadata())
    }

    func listening(address: String, advertised: String, port: UInt16, discoveryPort: UInt16, via broadcast: String) {
        logger.info("\(name) listens on \(NodeIdentity.endpoint(address, port)), advertises \(NodeIdentity.endpoint(advertised, port)), discovery on port \(discoveryPort) via \(broadcast)", metadata: metadata())
    }

    func portTaken(_ requested: UInt16, instead: Int) {
        logger.notice("port \(requested) is in use; \(name) listens on port \(instead) instead", metadata: metadata())
    }

    /// Seeds without a cluster key: their traffic crosses routed networks in clear.
    static let unsealedSeedsWarning = "no cluster key: seeds cross routed networks unauthenticated (see --key-file)"

    func seedsWithoutKey() {
        logger.warning("\(Self.unsealedSeedsWarning)", metadata: metadata())
    }

    func discoveryOff(seeds: Int) {
        logger.info("\(name) has broadcast discovery off; it finds peers through \(seeds) seed\(seeds == 1 ? "" : "s")", metadata: metadata())
    }

    /// A seed's name did not resolve: a warning at most once a minute per seed.
    func seedUnresolved(_ seed: String, error: String, now: Instant = BootClock.now()) {
        if let last = seedWarnings[seed], now - last < .seconds(60) { return }
        seedWarnings[seed] = now
        logger.warning("peer \(seed) does not resolve: \(error); trying again", metadata: metadata())
    }

    func discoveryClosed() {
        logger.warning("the discovery socket was closed by a send error; binding it again", metadata: metadata())
    }

    /// The kernel aborted a link whose frames went unacknowledged for `Timing.linkTimeout`.
    func linkTimedOut(_ peer: String, after timeout: Duration) {
        var m = metadata()
        m["quorum.peer"] = "\(peer)"
        logger.info("the link to \(peer) carried no acknowledgement for \(timeout); closed it, dialling again", metadata: m)
    }

    // MARK: - The core adapter's lines

    func persistFailed(_ error: any Error) {
        logger.critical("cannot persist the vote: \(error)", metadata: metadata())
    }

    func leaving(code: Int32) {
        // A node refused by the cluster (status 2) never was part of it: its one line says why.
        logger.log(level: exitMessage == nil ? .info : .debug, "\(name) leaves the cluster (exit status \(code))", metadata: metadata())
    }

    func strayRefusal(_ peer: NodeIdentity) {
        logger.debug("the core refused a link to \(peer.name) (instance \(String(peer.instance, radix: 16))) that is not being admitted; ignored", metadata: metadata())
    }

    /// The core refused a link it was just told of (see `CoreAdapter.refuse`).
    func refused(_ peer: NodeIdentity, _ refusal: LinkRefusal) {
        var m = metadata()
        m["quorum.peer"] = "\(peer.name)"
        m["quorum.peer.address"] = "\(peer.endpoint)"
        m["quorum.peer.instance"] = "\(String(peer.instance, radix: 16))"
        switch refusal {
        case .nameTaken(let holder):
            m["quorum.holder.address"] = "\(holder.endpoint)"
            if peer.name == name {
                logger.warning("\(name) refused a link from another process named \(peer.name) at \(peer.address):\(peer.port): this node, at \(holder.address):\(holder.port), holds the name here; told it the name is taken", metadata: m)
            } else {
                logger.warning("\(name) refused a second node named \(peer.name) at \(peer.address):\(peer.port): \(peer.name) already runs at \(holder.address):\(holder.port); told it the name is taken", metadata: m)
            }
        case .holderNotYetGone(let holder):
            m["quorum.holder.address"] = "\(holder.address):\(holder.port)"
            logger.warning("\(name) refused \(peer.name) at \(peer.address):\(peer.port) for now: the member \(peer.name) at \(holder.address):\(holder.port) is silent but not known to be gone", metadata: m)
        }
    }

    /// A watch event of this node, now.
    func event(_ type: WatchEvent.Kind) -> WatchEvent {
        WatchEvent(type: type, node: name, instance: instance, epoch: epoch(), millisecondsSinceEpoch: BootClock.wallClockMilliseconds())
    }

    /// What watchers see of a notice (most notices are not events).
    func watchEvent(_ notice: Notice) -> WatchEvent? {
        var e: WatchEvent
        switch notice {
        case .masterChanged(let master, let epoch):
            e = event(.master)
            e.master = master
            e.epoch = epoch
        case .masterGone(let previous, _):
            e = event(.masterGone)
            e.previousMaster = previous
        case .roleChanged(let from, let to, let epoch, let cause):
            e = event(.role)
            e.role = to.rawValue
            e.previousRole = from.rawValue
            e.cause = cause.rawValue
            e.epoch = epoch
        case .peerConnected(let p, _): e = event(.peerJoined); e.peer = p
        case .peerReentered(let p): e = event(.peerReentered); e.peer = p
        case .peerLost(let p, let evidence): e = event(.peerLost); e.peer = p; e.evidence = evidence
        case .peerDispatched(let p), .peerLeftEarlier(let p, _): e = event(.peerLeft); e.peer = p
        case .peerForgotten(let p): e = event(.peerForgotten); e.peer = p
        case .hookSkipped(let run, let reason):
            e = event(.hookSkipped)
            e.hook = run.isMasterHook ? "master" : "slave"
            e.hookId = run.id
            e.role = run.role.rawValue
            e.outcome = reason
        default:
            return nil
        }
        return e
    }

    /// Feeds the metrics that count notices: changes of master, and how long this node was
    /// without one after its master went.
    private func count(_ notice: Notice) {
        switch notice {
        case .masterGone:
            if masterGoneAt == nil { masterGoneAt = BootClock.now() }
        case .masterChanged:
            metrics?.masterChanges.increment()
            if let since = masterGoneAt {
                metrics?.failover.record(BootClock.now() - since)
                masterGoneAt = nil
            }
        default:
            break
        }
    }

    /// The `MESSAGE_ID` of a member's notice.
    static func messageID(of notice: Notice) -> MessageID? {
        switch notice {
        case .peerConnected: .peerJoined
        case .peerReentered: .peerReentered
        case .peerLost: .peerLost
        case .peerDispatched, .peerLeftEarlier: .peerLeft
        case .peerForgotten: .peerForgotten
        default: nil
        }
    }

    /// A hook was handed to the runner.
    func hookStarted(_ run: HookInvocation) {
        guard watch.isWatched else { return }
        var e = event(.hookStarted)
        e.hook = run.role == Role.master.rawValue ? "master" : "slave"
        e.hookId = run.id
        e.role = run.role
        e.epoch = run.epoch
        watch.publish(e)
    }

    /// A hook ended (`outcome` as the runner reported it).
    func hookFinished(_ run: HookInvocation, outcome: HookOutcome, after duration: Duration) {
        metrics?.hookFinished(master: run.role == Role.master.rawValue, outcome: outcome, after: duration)
        guard watch.isWatched else { return }
        var e = event(.hookFinished)
        e.hook = run.role == Role.master.rawValue ? "master" : "slave"
        e.hookId = run.id
        e.role = run.role
        e.epoch = run.epoch
        e.outcome = Self.describe(outcome)
        e.durationMilliseconds = duration.nanosecondsClamped / 1_000_000
        watch.publish(e)
    }

    static func describe(_ outcome: HookOutcome) -> String {
        switch outcome {
        case .exited(let code): "exit \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        case .timedOut: "killed after the hook timeout"
        case .missing: "not run: file not found"
        case .notExecutable: "not run: not executable"
        case .failedToStart(let why): "not run: \(why)"
        case .notRun: "not run: the node was stopping"
        }
    }

    /// One of the core's notices. `exiting`: the same batch ends the node (`.exit`).
    func log(_ notice: Notice, exiting: Bool = false) {
        if watch.isWatched, let e = watchEvent(notice) { watch.publish(e) }
        count(notice)
        var m = metadata()
        let line = notice.description(node: name)
        let level: Logger.Level = notice.isDebug ? .debug : .info
        switch notice {
        case .masterChanged(let master, let epoch):
            m["MESSAGE_ID"] = "\(MessageID.masterChanged.rawValue)"
            m["quorum.master"] = "\(master)"
            m["quorum.epoch"] = "\(epoch)"
            logger.notice("\(line)", metadata: m)
        case .masterGone(let previous, let epoch):
            m["MESSAGE_ID"] = "\(MessageID.masterGone.rawValue)"
            m["quorum.peer"] = "\(previous)"
            m["quorum.previous.epoch"] = "\(epoch)"
            logger.log(level: level, "\(line)", metadata: m)
        case .peerConnected(let p, _), .peerReentered(let p), .peerLost(let p, _), .peerDispatched(let p), .peerLeftEarlier(let p, _),
             .peerForgotten(let p):
            m["MESSAGE_ID"] = "\(Self.messageID(of: notice)?.rawValue ?? "")"
            m["quorum.peer"] = "\(p)"
            if case .peerLost(_, let evidence) = notice { m["quorum.evidence"] = "\(evidence)" }
            logger.log(level: level, "\(line)", metadata: m)
        case .peerRefused(let p, _):
            m["quorum.peer"] = "\(p)"
            logger.warning("\(line)", metadata: m)
        case .roleChanged(let from, let to, let epoch, let cause):
            m["MESSAGE_ID"] = "\(MessageID.roleChanged.rawValue)"
            m["quorum.previous.role"] = "\(from.rawValue)"
            m["quorum.role"] = "\(to.rawValue)"
            m["quorum.epoch"] = "\(epoch)"
            m["quorum.cause"] = "\(cause.rawValue)"
            logger.info("\(line)", metadata: m)
        case .voted(let candidate, let epoch), .voteDeferred(let candidate, let epoch, _):
            m["quorum.peer"] = "\(candidate)"
            m["quorum.vote.epoch"] = "\(epoch)"
            logger.log(level: level, "\(line)", metadata: m)
        case .candidacyStarted(let epoch, _), .candidacyFailed(let epoch, _):
            m["quorum.vote.epoch"] = "\(epoch)"
            logger.log(level: level, "\(line)", metadata: m)
        case .steppingDown(let epoch, let cause):
            m["quorum.previous.epoch"] = "\(epoch)"
            m["quorum.cause"] = "\(cause.rawValue)"
            logger.log(level: level, "\(line)", metadata: m)
        case .membershipChanged(let stamp, let size):
            m["MESSAGE_ID"] = "\(MessageID.membershipChanged.rawValue)"
            m["quorum.membership"] = "\(stamp)"
            m["quorum.members"] = "\(size)"
            logger.log(level: level, "\(line)", metadata: m)
        case .clusterMet(let size, let stamp, let via):
            m["quorum.peer"] = "\(via)"
            m["quorum.membership"] = "\(stamp)"
            m["quorum.members"] = "\(size)"
            logger.warning("\(line)", metadata: m)
        case .duplicateName(let name, let address, let port):
            m["quorum.peer"] = "\(name)"
            m["quorum.peer.address"] = "\(address):\(port)"
            logger.warning("\(line)", metadata: m)
        case .nameTaken(let holder):
            m["quorum.holder.address"] = "\(holder.address):\(holder.port)"
            m["quorum.holder.instance"] = "\(String(holder.instance, radix: 16))"
            guard exiting else {
                // A node that has run for a while keeps its name (the core decides): a warning.
                logger.warning("\(line)", metadata: m)
                return
            }
            // The core ends the node with status 2 right after this: the operator reads one
            // line, on standard error (quorumd prints `ended`'s message) or, under journald,
            // this entry with its fields.
            let message = "another node named \(name) is already running at \(holder.address):\(holder.port); refusing to start a second one"
            if exitMessage == nil { exitMessage = message }
            if logOutput == .journal {
                logger.error("\(message)", metadata: m)
            } else {
                logger.debug("\(line)", metadata: m)
            }
        case .hookSkipped(let run, let reason):
            m["MESSAGE_ID"] = "\(MessageID.hookSkipped.rawValue)"
            m["quorum.hook.role"] = "\(run.role.rawValue)"
            m["quorum.hook.epoch"] = "\(run.epoch)"
            m["quorum.hook.id"] = "\(run.id)"
            m["quorum.hook.reason"] = "\(reason)"
            logger.info("\(line)", metadata: m)
        }
    }
}

/// Counts dropped input and logs at most one line per kind every 10 seconds.
struct DropCounter {
    private var last: [String: (at: Instant, suppressed: Int)] = [:]

    /// Returns whether a line was logged (false: suppressed, counted for the next line).
    @discardableResult
    mutating func note(_ kind: String, error: String, logger: Logger, now: Instant = BootClock.now()) -> Bool {
        if let entry = last[kind], now - entry.at < .seconds(10) {
            last[kind]?.suppressed += 1
            return false
        }
        let suppressed = last[kind]?.suppressed ?? 0
        last[kind] = (now, 0)
        logger.info("dropped \(kind): \(error)\(suppressed > 0 ? " (and \(suppressed) more in the last 10 s)" : "")")
        return true
    }
}
