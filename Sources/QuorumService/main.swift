import Logging
import Metrics
import Prometheus
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

// A SIGHUP reloads (see ReloadSignals below); one that comes while the node starts is ignored
// rather than ending it. SIGUSR1 and SIGUSR2 mean nothing to quorumd: ignored, never fatal.
signal(SIGHUP, SIG_IGN)
signal(SIGUSR1, SIG_IGN)
signal(SIGUSR2, SIG_IGN)

func standardError(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

// The same flags, environment and host name are read again by every reload.
let startArguments = Array(CommandLine.arguments.dropFirst())
let startEnvironment = ProcessContext.environment()
let startHostname = ProcessContext.hostname()
@Sendable func readCommand() throws(SettingsError) -> SettingsCommand {
    try NodeSettings.parse(
        arguments: startArguments, environment: startEnvironment, hostname: startHostname,
        readFile: ProcessContext.readTextFile)
}

let command: SettingsCommand
do {
    command = try readCommand()
} catch {
    standardError("quorumd: \(error)")
    exit(SettingsError.exitStatus)
}

let settings: NodeSettings
switch command {
case .help(let text), .version(let text):
    print(text)
    exit(0)
case .checkConfigFailed(let problems):
    for problem in problems { standardError("quorumd: \(problem)") }
    exit(SettingsError.exitStatus)
case .checkConfig(let s):
    // What a start would read, without binding, resolving or touching the state directory.
    var problems: [String] = []
    if let path = s.keyFile {
        do { _ = try NamedFiles.loadKeyring(path) } catch { problems.append(error.description) }
    }
    if let problem = NamedFiles.checkProblem(s) { problems.append(problem) }
    for warning in NamedFiles.hookWarnings(s) { print("warning: \(warning)") }
    if !s.seeds.contains(where: \.isLiteral), !s.seeds.isEmpty {
        print("note: peer names are not resolved by a check (a start resolves them, and retries)")
    }
    for problem in problems { standardError("quorumd: \(problem)") }
    if !problems.isEmpty { exit(SettingsError.exitStatus) }
    print("configuration OK")
    exit(0)
case .run(let s):
    if let problem = NamedFiles.checkProblem(s) {
        standardError("quorumd: \(problem)")
        exit(SettingsError.exitStatus)
    }
    settings = s
}

let logOutput = LogOutput.detect()
LoggingSystem.bootstrapQuorum(level: settings.logLevel, output: logOutput)
var logger = Logger(label: "quorumd")
logger[metadataKey: "quorum.node"] = "\(settings.name)"

// SIGINT keeps its default action (the original's Ctrl+C: no goodbye, peers mark the node
// lost); SIGTERM is a graceful dispatch; a peer that vanishes must not kill us with SIGPIPE.
signal(SIGPIPE, SIG_IGN)

// The cluster key, if any: a key file that cannot be read or parsed is a configuration error.
var keyring: ClusterKeyring? = nil
if let path = settings.keyFile {
    do {
        keyring = try NamedFiles.loadKeyring(path)
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
    driver.hookCompleted(completion)
}

let reloader = Reloader(settings: settings, keyring: keyring, driver: driver, hooks: hooks, logger: logger) { () throws(SettingsError) in
    guard case .run(let read) = try readCommand() else { throw SettingsError("the command line no longer starts a node") }
    return read
}

let control: ControlServer
do {
    var controlConfiguration = ControlServer.Configuration()
    controlConfiguration.authorize = ControlAccess.policy()
    control = try await ControlServer.bind(
        socketPath: settings.controlSocket, configuration: controlConfiguration, eventLoopGroup: group, logger: logger,
        watch: { await driver.watch() }, handler: ControlAdapter(driver: driver, reloader: reloader).handler)
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
driver.startMetrics()
// Metrics that libraries report through swift-metrics land in the same registry.
MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: driver.metrics.registry))
// Every socket is bound and the first state is known.
SystemdNotifier().ready()

// The service group's own debug lines describe whole objects; keep them out of `-d` output.
var lifecycleLogger = logger
lifecycleLogger.logLevel = .info
let serviceGroup = ServiceGroup(configuration: .init(
    services: [
        .init(service: hooks),
        .init(service: control),
        .init(service: ReloadSignals(reloader: reloader)),
        .init(service: HealthCheckRunner(driver: driver, logger: logger)),
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
