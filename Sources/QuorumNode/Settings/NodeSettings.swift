import Logging
import QuorumControl
import QuorumCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Everything quorumd is told at start: the command line and `--config` files, resolved and
/// validated. Made by ``NodeSettings/parse(arguments:environment:hostname:readFile:)``.
public struct NodeSettings: Sendable, Equatable {
    /// Where the node listens for peers (TCP). An IPv4 or IPv6 literal.
    public var address: String = Defaults.address
    /// The requested peer port; 0 means any free port.
    public var port: UInt16 = Defaults.port
    /// Where discovery datagrams are sent. An IPv4 or IPv6 literal.
    public var broadcastAddress: String = Defaults.broadcastAddress
    /// `false` with `--broadcast-address none`: no discovery socket; only seeds find peers.
    public var broadcastDiscovery = true
    /// The interface discovery datagrams go out of and are received on (an IPv6 multicast
    /// group is joined there).
    public var discoveryInterface: String? = nil
    /// `--peer` entries, in order: dialled over TCP to find peers.
    public var seeds: [SeedSpec] = []
    /// How long a seed that is not connected keeps a resolution before it is resolved again.
    public var peerResolveInterval: Duration = Defaults.peerResolveInterval
    /// The discovery port (1–65535), listened on by every node of the host.
    public var broadcastPort: UInt16 = Defaults.broadcastPort
    /// The node's nickname (``QuorumCore/Names``).
    public var name: String
    /// How many times `-d` was given (0: info level).
    public var debugLevel: Int = 0
    /// `--log-level`, else debug with `-d`, else info. Reloadable.
    public var logLevel: Logger.Level = .info
    public var masterHook: String? = nil
    public var slaveHook: String? = nil
    public var metric: Metric = .age
    public var onQuorumLoss: QuorumLossPolicy = .wait
    /// No master until this many nodes (self included) have been seen; `nil`: off.
    public var expectedNodes: Int? = nil
    public var tieBreaker: Bool = false
    public var cluster: String = Defaults.cluster
    public var keyFile: String? = nil
    public var hookTimeout: Duration = Defaults.hookTimeout
    public var controlSocket: String
    public var stateDirectory: String
    /// `--metrics-listen`: where `/metrics` is served (host literal, port); nil: off.
    public var metricsListen: MetricsEndpoint? = nil
    /// `--priority` (0: never master), `--preempt`, `--preempt-delay`, `--witness`.
    public var priority: UInt8 = Eligibility.defaultPriority
    public var preempt: Bool = true
    public var preemptDelay: Duration = Eligibility.defaultPreemptDelay
    public var witness: Bool = false
    /// `--check` and its timing; nil: no health check (health does not count).
    public var check: HealthCheckSettings? = nil
    /// The `--config` files read, in order (later files win over earlier ones).
    public var configFiles: [String] = []
    /// The highest protocol version the node speaks. Tests set `QUORUM_TEST_PROTOCOL` to
    /// make a build stand in for an older one; nothing else changes it.
    public var protocolVersion: UInt8 = WireFormat.version

    /// `true` when at least one `-d` was given.
    public var debug: Bool { debugLevel > 0 }

    /// The usual spelling of every level, as `--log-level` takes it.
    public static let logLevelNames = Logger.Level.allCases.map(\.rawValue)

    /// Every default of quorumd's settings, written once: the properties above, the parser
    /// and the `--help` text read them here (interface.md lists them).
    public enum Defaults {
        public static let address = "0.0.0.0"
        public static let port: UInt16 = 8080
        public static let broadcastAddress = "255.255.255.255"
        public static let broadcastPort: UInt16 = 5595
        public static let cluster = "quorum"
        public static let hookTimeout: Duration = .seconds(30)
        public static let peerResolveInterval: Duration = .seconds(5)
        /// Without systemd's `RUNTIME_DIRECTORY`: `/run/quorum/NAME/control.sock`, where
        /// `quorumctl -n NAME` looks.
        public static func controlSocket(name: String) -> String { ControlSocketLocator.socketPath(forNode: name) }
        /// Without systemd's `STATE_DIRECTORY`.
        public static func stateDirectory(name: String) -> String { "/var/lib/quorum/\(name)" }
    }

    public init(name: String, controlSocket: String, stateDirectory: String) {
        self.name = name
        self.controlSocket = controlSocket
        self.stateDirectory = stateDirectory
    }

    /// The core's view of these settings.
    public var coreConfiguration: CoreConfiguration {
        var configuration = CoreConfiguration(cluster: cluster)
        configuration.metric = metric
        configuration.onQuorumLoss = onQuorumLoss
        configuration.expectedNodes = expectedNodes
        configuration.tieBreaker = tieBreaker
        configuration.protocolVersion = protocolVersion
        configuration.eligibility = Eligibility(priority: priority, preempt: preempt, preemptDelay: preemptDelay,
                                                health: check == nil ? .unchecked : .unknown, witness: witness)
        return configuration
    }
}

/// Where the metrics are served: an IPv4 or IPv6 literal (`::` for every address) and a port.
public struct MetricsEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// What the command line asks for.
public enum SettingsCommand: Sendable, Equatable {
    /// Run a node with these settings.
    case run(NodeSettings)
    /// `-h`/`--help`: print this usage text and exit 0.
    case help(String)
    /// `--version`: print this text and exit 0.
    case version(String)
    /// `--check-config`: these settings parsed; check what they name, then exit.
    case checkConfig(NodeSettings)
    /// `--check-config` with bad settings: every problem found, one line each (exit 2).
    case checkConfigFailed([String])
}

extension NodeSettings: CustomStringConvertible {
    /// One `key = value` line per setting, in the config file's syntax.
    public var description: String {
        var lines = settingTexts
        if !configFiles.isEmpty { lines.append(("# config", configFiles.joined(separator: ", "))) }
        return lines.map { "\($0.0) = \($0.1)" }.joined(separator: "\n")
    }

    /// Every setting as its config-file key and its value's text (`""`: not set).
    var settingTexts: [(String, String)] {
        [
            ("address", address), ("port", "\(port)"),
            ("broadcast-address", broadcastDiscovery ? broadcastAddress : "none"), ("broadcast-port", "\(broadcastPort)"),
            ("name", name), ("cluster", cluster), ("debug", "\(debugLevel)"), ("log-level", logLevel.rawValue),
            ("master-hook", masterHook ?? ""), ("slave-hook", slaveHook ?? ""),
            ("use-port-instead-of-life-time", metric == .port ? "true" : "false"),
            ("on-quorum-loss", onQuorumLoss.rawValue),
            ("expected-nodes", expectedNodes.map(String.init) ?? ""),
            ("tie-breaker", tieBreaker ? "true" : "false"),
            ("key-file", keyFile ?? ""),
            ("hook-timeout", Self.format(hookTimeout)),
            ("control-socket", controlSocket), ("state-dir", stateDirectory),
            ("peer", seeds.map(\.text).joined(separator: ", ")),
            ("peer-resolve-interval", Self.format(peerResolveInterval)),
            ("discovery-interface", discoveryInterface ?? ""),
            ("metrics-listen", metricsListen?.description ?? ""),
            ("priority", "\(priority)"), ("preempt", preempt ? "yes" : "no"),
            ("preempt-delay", Self.format(preemptDelay)), ("witness", witness ? "true" : "false"),
            ("check", check?.commandText ?? ""),
            ("check-interval", check.map { Self.format($0.interval) } ?? ""),
            ("check-timeout", check.map { Self.format($0.timeout) } ?? ""),
            ("check-fall", check.map { "\($0.fall)" } ?? ""), ("check-rise", check.map { "\($0.rise)" } ?? ""),
        ]
    }

    static func format(_ duration: Duration) -> String { duration.secondsText }
}
