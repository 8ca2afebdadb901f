import ArgumentParser
import QuorumCore

/// quorumd's command line as swift-argument-parser sees it. Every value is taken as text
/// and checked by ``NodeSettings/parse(arguments:environment:hostname:readFile:)``, so that
/// flag and config-file values share one validation and one style of error message.
///
/// swift-argument-parser 1.8.2 handles the original's forms itself: `-m=FILE` (a short
/// name with `=`), `-d -d` (a counted flag), `--use_port_instead_of_life_time` (a second
/// long name), and positionals mixed with options.
struct QuorumdArguments: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quorumd",
        abstract: "One node of a quorum cluster: nodes find each other, elect a master and run role hooks.",
        discussion: """
            Example (the original's): quorumd 0.0.0.0 6170 -d -m=i_am_master.py -s=i_am_slave.py -n=B -d
            A config file has lines `key = value`, keys being the long option names without dashes \
            (and address, port, broadcast-address, broadcast-port); flags win over the file.
            """
    )

    @Argument(help: ArgumentHelp("The address to listen on for peers (default \(NodeSettings.Defaults.address)).", valueName: "address"))
    var address: String?
    @Argument(help: ArgumentHelp("The TCP port for peers; 0: any free port (default \(NodeSettings.Defaults.port)).", valueName: "port"))
    var port: String?
    @Argument(help: ArgumentHelp("Where discovery datagrams are sent (default \(NodeSettings.Defaults.broadcastAddress)).", valueName: "broadcast-address"))
    var broadcastAddress: String?
    @Argument(help: ArgumentHelp("The discovery UDP port (default \(NodeSettings.Defaults.broadcastPort)).", valueName: "broadcast-port"))
    var broadcastPort: String?

    @Option(name: .shortAndLong, help: "Nickname: 1-64 bytes of letters, digits, '-', '_', '.' (default <hostname>-<port>).")
    var name: String?
    @Flag(name: .shortAndLong, help: "Debug log lines, as --log-level debug (may be repeated; it stays debug).")
    var debug: Int
    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (default info; wins over -d).", valueName: "level"))
    var logLevel: String?
    @Flag(name: .customLong("version"), help: "Print the version and exit.")
    var version = false
    @Flag(name: [.customShort("t"), .customLong("check-config")],
          help: "Check the flags and the files they name (config, key, hooks), print `configuration OK` or every problem, and exit 0 or 2; binds nothing and touches no state.")
    var checkConfig = false
    @Option(name: [.customShort("m"), .customLong("master-hook")], help: ArgumentHelp("Run when this node becomes master.", valueName: "path"))
    var masterHook: String?
    @Option(name: [.customShort("s"), .customLong("slave-hook")], help: ArgumentHelp("Run when this node takes any other role.", valueName: "path"))
    var slaveHook: String?
    @Flag(name: [.customLong("use-port-instead-of-life-time"), .customLong("use_port_instead_of_life_time")],
          help: "Elect the lowest port instead of the oldest node.")
    var usePortInsteadOfLifeTime = false
    @Option(name: .customLong("on-quorum-loss"), help: ArgumentHelp("In a minority: wait (stay up as no-quorum) or dispatch (leave and exit 3).", valueName: "wait|dispatch"))
    var onQuorumLoss: String?
    @Option(name: .customLong("expected-nodes"), help: ArgumentHelp("No master until N nodes have been seen.", valueName: "n"))
    var expectedNodes: String?
    @Flag(name: .customLong("tie-breaker"), help: "In an exact half split, the half holding the best node keeps quorum.")
    var tieBreaker = false
    @Option(name: .customLong("cluster"), help: "Only join nodes of this cluster name (default \(NodeSettings.Defaults.cluster)).")
    var cluster: String?
    @Option(name: .customLong("key-file"), help: ArgumentHelp("The cluster key.", valueName: "path"))
    var keyFile: String?
    @Option(name: .customLong("hook-timeout"), help: ArgumentHelp("Kill a hook (its process group) still running after this (default \(NodeSettings.Defaults.hookTimeout.components.seconds)).", valueName: "seconds"))
    var hookTimeout: String?
    @Option(name: .customLong("control-socket"), help: ArgumentHelp("The control socket (default $RUNTIME_DIRECTORY/control.sock, else \(NodeSettings.Defaults.controlSocket(name: "NAME"))).", valueName: "path"))
    var controlSocket: String?
    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Persisted epoch and vote (default $STATE_DIRECTORY, else \(NodeSettings.Defaults.stateDirectory(name: "NAME"))).", valueName: "path"))
    var stateDir: String?
    @Option(name: .customLong("peer"), help: ArgumentHelp("A peer to dial over TCP, beside broadcast discovery (may be repeated; PORT defaults to this node's).", valueName: "host[:port]"))
    var peer: [String] = []
    @Option(name: .customLong("peer-resolve-interval"), help: ArgumentHelp("Resolve the names of peers that are not connected again after this (default \(NodeSettings.Defaults.peerResolveInterval.components.seconds)).", valueName: "seconds"))
    var peerResolveInterval: String?
    @Option(name: .customLong("broadcast-address"), help: ArgumentHelp("Where discovery datagrams go; none: no broadcast discovery (as the positional).", valueName: "address|none"))
    var broadcastAddressFlag: String?
    @Option(name: .customLong("discovery-interface"), help: ArgumentHelp("The interface discovery datagrams go out of (needed for an IPv6 link-local group such as ff02::114).", valueName: "name"))
    var discoveryInterface: String?
    @Option(name: .customLong("metrics-listen"), help: ArgumentHelp("Serve Prometheus metrics at http://ADDR:PORT/metrics (127.0.0.1:9170, [::1]:9170, :9170 for every address; off by default).", valueName: "addr:port"))
    var metricsListen: String?
    @Option(name: .customLong("priority"), help: ArgumentHelp("0-255, higher preferred as master; 0: never master, still votes (default \(Eligibility.defaultPriority)).", valueName: "n"))
    var priority: String?
    @Option(name: .customLong("preempt"), help: ArgumentHelp("yes: a member of higher priority takes the role from this node while it is master, after --preempt-delay; no: it waits for the next failover (default yes; the master's own value decides).", valueName: "yes|no"))
    var preempt: String?
    @Option(name: .customLong("preempt-delay"), help: ArgumentHelp("How long a member of higher priority must have been alive and eligible before it takes over from this master: 0 to 3600s, such as 500ms or 10s (default \(Eligibility.defaultPreemptDelay.components.seconds)s).", valueName: "duration"))
    var preemptDelay: String?
    @Flag(name: .customLong("witness"), help: "Vote and count, but never be master and run no hook (the third member of a two-node cluster).")
    var witness = false
    @Option(name: .customLong("check"), help: ArgumentHelp("A health check run on every node: a program and its arguments, split like shell words but run without a shell. A node whose check fails may not be master.", valueName: "command"))
    var check: String?
    @Option(name: .customLong("check-interval"), help: ArgumentHelp("The pause after one check ends before the next starts: 100ms to 3600s (default 1s).", valueName: "duration"))
    var checkInterval: String?
    @Option(name: .customLong("check-timeout"), help: ArgumentHelp("How long a check may run before its process group is killed, a failure: up to 60s (default the interval).", valueName: "duration"))
    var checkTimeout: String?
    @Option(name: .customLong("check-fall"), help: ArgumentHelp("Failures in a row that make a passing node failing: 1-100 (default 3).", valueName: "n"))
    var checkFall: String?
    @Option(name: .customLong("check-rise"), help: ArgumentHelp("Passes in a row that make a failing node passing again: 1-100 (default 2).", valueName: "n"))
    var checkRise: String?
    @Option(name: .customLong("config"), help: ArgumentHelp("Read settings from this file; may be repeated, later files win; flags win over files.", valueName: "file"))
    var config: [String] = []
    @Option(name: .customLong("config-dir"), help: ArgumentHelp("Read DIR/quorum.conf and then DIR/NAME.conf, each when it exists, at start and at every reload (below --config files and flags).", valueName: "dir"))
    var configDirectory: String?

    /// The values given on the command line, keyed like config-file keys, with their source.
    var given: [SettingKey: [SettingValue]] {
        var values: [SettingKey: [SettingValue]] = [:]
        func put(_ key: SettingKey, _ value: String?, _ source: SettingSource) {
            if let value { values[key] = [SettingValue(text: value, source: source)] }
        }
        put(.address, address, .positional("ADDRESS"))
        put(.port, port, .positional("PORT"))
        put(.broadcastAddress, broadcastAddress, .positional("BROADCAST_ADDRESS"))
        put(.broadcastAddress, broadcastAddressFlag, .flag("--broadcast-address"))
        if !peer.isEmpty { values[.peer] = peer.map { SettingValue(text: $0, source: .flag("--peer")) } }
        put(.peerResolveInterval, peerResolveInterval, .flag("--peer-resolve-interval"))
        put(.discoveryInterface, discoveryInterface, .flag("--discovery-interface"))
        put(.broadcastPort, broadcastPort, .positional("BROADCAST_PORT"))
        put(.name, name, .flag("--name"))
        if debug > 0 { put(.debug, String(debug), .flag("--debug")) }
        put(.logLevel, logLevel, .flag("--log-level"))
        put(.masterHook, masterHook, .flag("--master-hook"))
        put(.slaveHook, slaveHook, .flag("--slave-hook"))
        if usePortInsteadOfLifeTime { put(.usePortInsteadOfLifeTime, "true", .flag("--use-port-instead-of-life-time")) }
        put(.onQuorumLoss, onQuorumLoss, .flag("--on-quorum-loss"))
        put(.expectedNodes, expectedNodes, .flag("--expected-nodes"))
        if tieBreaker { put(.tieBreaker, "true", .flag("--tie-breaker")) }
        put(.cluster, cluster, .flag("--cluster"))
        put(.keyFile, keyFile, .flag("--key-file"))
        put(.hookTimeout, hookTimeout, .flag("--hook-timeout"))
        put(.controlSocket, controlSocket, .flag("--control-socket"))
        put(.stateDir, stateDir, .flag("--state-dir"))
        put(.metricsListen, metricsListen, .flag("--metrics-listen"))
        put(.priority, priority, .flag("--priority"))
        put(.preempt, preempt, .flag("--preempt"))
        put(.preemptDelay, preemptDelay, .flag("--preempt-delay"))
        if witness { put(.witness, "true", .flag("--witness")) }
        put(.check, check, .flag("--check"))
        put(.checkInterval, checkInterval, .flag("--check-interval"))
        put(.checkTimeout, checkTimeout, .flag("--check-timeout"))
        put(.checkFall, checkFall, .flag("--check-fall"))
        put(.checkRise, checkRise, .flag("--check-rise"))
        return values
    }
}

/// The settings a config file may hold; the raw value is the key as written in the file.
enum SettingKey: String, CaseIterable {
    case address, port
    case broadcastAddress = "broadcast-address"
    case broadcastPort = "broadcast-port"
    case name, debug
    case logLevel = "log-level"
    case masterHook = "master-hook"
    case slaveHook = "slave-hook"
    case usePortInsteadOfLifeTime = "use-port-instead-of-life-time"
    case onQuorumLoss = "on-quorum-loss"
    case expectedNodes = "expected-nodes"
    case tieBreaker = "tie-breaker"
    case cluster
    case keyFile = "key-file"
    case hookTimeout = "hook-timeout"
    case controlSocket = "control-socket"
    case stateDir = "state-dir"
    case peer
    case peerResolveInterval = "peer-resolve-interval"
    case discoveryInterface = "discovery-interface"
    case metricsListen = "metrics-listen"
    case priority, preempt
    case preemptDelay = "preempt-delay"
    case witness
    case check
    case checkInterval = "check-interval"
    case checkTimeout = "check-timeout"
    case checkFall = "check-fall"
    case checkRise = "check-rise"

    /// A key whose values add up (repeated, or comma-separated) instead of replacing.
    var isRepeatable: Bool { self == .peer }

    /// A key as written in a file; `_` is accepted for `-` (the original's spelling).
    init?(fileKey: String) {
        self.init(rawValue: fileKey.replacingUnderscores())
    }
}

struct SettingValue {
    var text: String
    var source: SettingSource
}

extension String {
    fileprivate func replacingUnderscores() -> String {
        String(map { $0 == "_" ? "-" : $0 })
    }
}
