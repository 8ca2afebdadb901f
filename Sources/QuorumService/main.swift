import Logging
import QuorumCore
import NIOCore
import NIOPosix
import QuorumControlServer
import QuorumNode
import QuorumSecurity
import QuorumSystemd
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// quorumd: parse the command line and config files first; a bad setting ends the process
// with status 2 before anything touches the network.

func standardError(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

let command: SettingsCommand
do {
    command = try NodeSettings.parse(
        arguments: Array(CommandLine.arguments.dropFirst()),
        environment: ProcessContext.environment(),
        hostname: ProcessContext.hostname(),
        readFile: ProcessContext.readTextFile)
} catch {
    standardError("quorumd: \(error)")
    exit(SettingsError.exitStatus)
}

let settings: NodeSettings
switch command {
case .help(let usage):
    print(usage)
    exit(0)
case .run(let s):
    settings = s
}

let logOutput = LogOutput.detect()
LoggingSystem.bootstrapQuorum(debug: settings.debug, output: logOutput)
var logger = Logger(label: "quorumd")
logger[metadataKey: "quorum.node"] = "\(settings.name)"

// SIGINT keeps its default action (the original's Ctrl+C: no goodbye, peers mark the node
// lost); SIGTERM is a graceful dispatch; a peer that vanishes must not kill us with SIGPIPE.
signal(SIGPIPE, SIG_IGN)

// The cluster key, if any: a key file that cannot be read or parsed is a configuration error.
var keyring: ClusterKeyring? = nil
if let path = settings.keyFile {
    do {
        var info = stat()
        guard stat(path, &info) == 0 else { throw ClusterKeyring.Failure(description: "cannot read key file \(path): \(String(cString: strerror(errno)))") }
        guard info.st_mode & 0o007 == 0 else {
            throw ClusterKeyring.Failure(description: "key file \(path) is readable or writable by others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        keyring = try ClusterKeyring(parsing: try ProcessContext.readTextFile(path), path: path)
    } catch {
        standardError("quorumd: \(error)")
        exit(2)
    }
} else {
    logger.warning("no cluster key: cluster traffic is neither encrypted nor authenticated, so anyone on this network can join, vote or evict nodes; create one with `quorumctl keygen` and set key-file")
}

// One event-loop thread carries the peer links, discovery and the control socket.
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let driver = NodeDriver(settings: settings, loop: group.next(), logger: logger, keyring: keyring, logOutput: logOutput)

let restored: PersistentState?
do {
    restored = try driver.loadState()
} catch {
    standardError("quorumd: \(error)")
    exit(2)
}

let hooks = HookRunner(timeout: settings.hookTimeout, logger: logger) { completion in
    driver.hookCompleted(completion.id)
}

let control: ControlServer
do {
    var controlConfiguration = ControlServer.Configuration()
    controlConfiguration.authorize = ControlAccess.policy()
    control = try await ControlServer.bind(
        socketPath: settings.controlSocket, configuration: controlConfiguration, eventLoopGroup: group, logger: logger,
        handler: ControlAdapter(driver: driver).handler)
} catch {
    standardError("quorumd: \(error)")
    exit(2)
}

do {
    try await driver.start(restored: restored, hooks: hooks)
} catch let taken as NodeDriver.PortTaken {
    // Retryable (the unit restarts it): the port may be free again in a moment.
    standardError("quorumd: \(taken)")
    await control.close()
    exit(1)
} catch {
    standardError("quorumd: cannot bind \(NodeIdentity.endpoint(settings.address, settings.port)) or discovery port \(settings.broadcastPort): \(error)")
    await control.close()
    exit(2)
}
driver.watchTerminal()
// Every socket is bound and the first state is known.
SystemdNotifier().ready()

// The service group's own debug lines describe whole objects; keep them out of `-d` output.
var lifecycleLogger = logger
lifecycleLogger.logLevel = .info
let serviceGroup = ServiceGroup(configuration: .init(
    services: [
        .init(service: hooks),
        .init(service: control),
        // Shut down first (services stop in reverse order): it leaves, then the rest stop.
        .init(service: NodeService(driver: driver), successTerminationBehavior: .gracefullyShutdownGroup),
    ],
    gracefulShutdownSignals: [.sigterm],
    logger: lifecycleLogger))

do {
    try await serviceGroup.run()
} catch let stopped as NodeService.Stopped {
    // Logged by the node already (a vote that could not be persisted): end like a crash.
    exit(stopped.code)
} catch {
    logger.error("quorumd stopped: \(error)")
    exit(1)
}
guard let ending = try? await driver.ended.get() else { exit(1) }
// A node that must not run (its name is held by a live member, status 2) says why in one
// line; under journald the node logged it as an entry with fields instead.
if let message = ending.message, logOutput == .standardError {
    standardError("quorumd: \(message)")
}
exit(ending.code)
