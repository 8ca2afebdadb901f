import ArgumentParser
import Logging
import QuorumControl
import QuorumCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension NodeSettings {
    /// Reads quorumd's command line (without the program name) and the `--config` files it
    /// names, and returns validated settings, or the usage text for `-h`/`--help`.
    ///
    /// Pure apart from `readFile`, which is called only for `--config` files, in order.
    /// Precedence: flags, then config files (later ones win), then defaults; the defaults of
    /// `control-socket` and `state-dir` come from `RUNTIME_DIRECTORY`/`STATE_DIRECTORY` in
    /// `environment` (systemd sets them), else from the name.
    ///
    /// - Parameter hostname: for the default name `<hostname>-<requested port>`.
    /// - Throws: ``SettingsError``, one line naming the flag, or file and line, at fault.
    public static func parse(
        arguments: [String],
        environment: [String: String],
        hostname: String,
        readFile: (String) throws -> String,
        fileExists: (String) -> Bool = { access($0, F_OK) == 0 }
    ) throws(SettingsError) -> SettingsCommand {
        let commandLine: QuorumdArguments
        do {
            commandLine = try QuorumdArguments.parse(arguments)
        } catch {
            if QuorumdArguments.exitCode(for: error) == .success {
                // `--generate-completion-script bash|zsh|fish`: the packaging installs its output.
                if arguments.contains(where: { $0.hasPrefix("--generate-completion-script") }) {
                    return .help(QuorumdArguments.fullMessage(for: error))
                }
                return .help(QuorumdArguments.helpMessage(columns: 100))
            }
            throw SettingsError(QuorumdArguments.message(for: error) + " (see quorumd --help)")
        }
        if commandLine.version { return .version(BuildInfo.versionText(program: "quorumd")) }

        var values: [SettingKey: [SettingValue]] = [:]
        func read(_ path: String, as flag: String) throws(SettingsError) {
            let text: String
            do {
                text = try readFile(path)
            } catch {
                throw SettingsError("\(flag) \(path): cannot read the file (\(error))")
            }
            values.merge(try ConfigFile.parse(text, path: path)) { $1 }
        }
        // --config-dir: the files there that exist now (so a reload sees a file made since).
        var directoryFiles: [String] = []
        if let directory = commandLine.configDirectory {
            guard !directory.isEmpty else { throw SettingsError("--config-dir: the path is empty") }
            let shared = directory + "/quorum.conf"
            if fileExists(shared) {
                try read(shared, as: "--config-dir")
                directoryFiles.append(shared)
            }
            // The node's own file, by the name the flags give (else the shared file's).
            if let name = commandLine.name ?? values[.name]?.last?.text, name != "quorum", Names.isValid(name) {
                let own = directory + "/" + name + ".conf"
                if fileExists(own) {
                    try read(own, as: "--config-dir")
                    directoryFiles.append(own)
                }
            }
        }
        for path in commandLine.config {
            guard !path.isEmpty else { throw SettingsError("--config: the path is empty") }
            try read(path, as: "--config")
        }
        values.merge(commandLine.given) { $1 }

        if commandLine.checkConfig {
            // Every problem, one line each: a bad value is set aside and the rest checked again.
            var problems: [String] = []
            while true {
                do {
                    var settings = try resolve(values, environment: environment, hostname: hostname)
                    settings.configFiles = directoryFiles + commandLine.config
                    return problems.isEmpty ? .checkConfig(settings) : .checkConfigFailed(problems)
                } catch {
                    problems.append(error.description)
                    guard problems.count < 100, let key = values.keys.first(where: { key in
                        values[key]!.contains { error.description.hasPrefix("\($0.source): ") }
                    }) else { return .checkConfigFailed(problems) }
                    values[key] = nil
                }
            }
        }
        var settings = try resolve(values, environment: environment, hostname: hostname)
        settings.configFiles = directoryFiles + commandLine.config
        return .run(settings)
    }

    /// Validates merged values and fills in defaults.
    static func resolve(
        _ values: [SettingKey: [SettingValue]],
        environment: [String: String],
        hostname: String
    ) throws(SettingsError) -> NodeSettings {
        func value(_ key: SettingKey) -> SettingValue? { values[key]?.last }

        let address = try value(.address).map(ipAddress) ?? Defaults.address
        let port = try value(.port).map { v throws(SettingsError) in try portNumber(v, allowZero: true) } ?? Defaults.port
        let discoveryOff = value(.broadcastAddress)?.text == "none"
        let broadcastAddress = discoveryOff ? Defaults.broadcastAddress : try value(.broadcastAddress).map(ipAddress) ?? Defaults.broadcastAddress
        let discoveryInterface = try value(.discoveryInterface).map(interfaceName)
        if !discoveryOff, let given = value(.broadcastAddress), given.text.contains(":") {
            // IPv6 has no broadcast: discovery goes to a multicast group.
            guard given.text.lowercased().hasPrefix("ff") else {
                throw .badValue(given.source, "'\(given.text)' is not an IPv6 multicast group: IPv6 has no broadcast; use a group such as ff02::114 with --discovery-interface")
            }
            if given.text.lowercased().hasPrefix("ff02"), discoveryInterface == nil {
                throw .badValue(given.source, "the link-local group \(given.text) needs --discovery-interface (the link to send on, such as eth0)")
            }
        }
        // Every seed is checked before anything else is said about them.
        var seeds: [SeedSpec] = []
        for entry in values[.peer] ?? [] {
            for item in entry.text.split(separator: ",", omittingEmptySubsequences: false) {
                do {
                    seeds.append(try SeedSpec.parse(String(item)))
                } catch {
                    throw .badValue(entry.source, "peer '\(item.trimmingWhitespace())': \(error.description)")
                }
            }
        }
        let broadcastPort = try value(.broadcastPort).map { v throws(SettingsError) in try portNumber(v, allowZero: false) } ?? Defaults.broadcastPort

        let name: String
        if let given = value(.name) {
            name = try validName(given, what: "name")
        } else {
            name = defaultName(hostname: hostname, port: port)
        }

        var settings = NodeSettings(
            name: name,
            controlSocket: Defaults.controlSocket(name: name),
            stateDirectory: Defaults.stateDirectory(name: name))
        settings.address = address
        settings.port = port
        settings.broadcastAddress = broadcastAddress
        settings.broadcastDiscovery = !discoveryOff
        settings.broadcastPort = broadcastPort
        settings.seeds = seeds
        settings.discoveryInterface = discoveryInterface
        settings.peerResolveInterval = try value(.peerResolveInterval).map(seconds) ?? Defaults.peerResolveInterval
        settings.debugLevel = try value(.debug).map(debugLevel) ?? 0
        settings.logLevel = try value(.logLevel).map(logLevel) ?? (settings.debugLevel > 0 ? .debug : .info)
        settings.masterHook = try value(.masterHook).map(path)
        settings.slaveHook = try value(.slaveHook).map(path)
        settings.metric = try value(.usePortInsteadOfLifeTime).map(boolean) == true ? .port : .age
        settings.onQuorumLoss = try value(.onQuorumLoss).map(lossPolicy) ?? .wait
        settings.expectedNodes = try value(.expectedNodes).map(nodeCount)
        settings.tieBreaker = try value(.tieBreaker).map(boolean) ?? false
        settings.cluster = try value(.cluster).map { v throws(SettingsError) in try validName(v, what: "cluster name") } ?? Defaults.cluster
        settings.keyFile = try value(.keyFile).map(path)
        settings.hookTimeout = try value(.hookTimeout).map(seconds) ?? Defaults.hookTimeout
        settings.metricsListen = try value(.metricsListen).map(metricsEndpoint)
        settings.priority = try value(.priority).map(priority) ?? Eligibility.defaultPriority
        settings.preempt = try value(.preempt).map(boolean) ?? true
        settings.preemptDelay = try value(.preemptDelay).map(delay) ?? Eligibility.defaultPreemptDelay
        settings.witness = try value(.witness).map(boolean) ?? false
        settings.check = try healthCheck(value)
        if settings.witness {
            // A witness is never master and runs nothing: a hook, a check or a priority would be ignored.
            for (key, flag) in [(SettingKey.masterHook, "--master-hook"), (.slaveHook, "--slave-hook"), (.priority, "--priority"), (.check, "--check")] where value(key) != nil {
                throw SettingsError("--witness cannot be combined with \(flag)")
            }
        }

        if let given = value(.controlSocket) {
            settings.controlSocket = try socketPath(given)
        } else if let runtime = systemdDirectory(environment["RUNTIME_DIRECTORY"]) {
            settings.controlSocket = runtime + "/control.sock"
        }
        if let given = value(.stateDir) {
            settings.stateDirectory = try path(given)
        } else if let state = systemdDirectory(environment["STATE_DIRECTORY"]) {
            settings.stateDirectory = state
        }
        if let given = environment["QUORUM_TEST_PROTOCOL"], !given.isEmpty {
            guard let v = UInt8(given), (WireFormat.lowestVersion...WireFormat.version).contains(v) else {
                throw SettingsError("QUORUM_TEST_PROTOCOL=\(given): this build speaks protocol versions \(WireFormat.lowestVersion) to \(WireFormat.version)")
            }
            settings.protocolVersion = v
        }
        if settings.controlSocket.utf8.count > maximumSocketPath {
            throw SettingsError("control socket path \(settings.controlSocket) is longer than \(maximumSocketPath) bytes; choose a shorter one with --control-socket")
        }
        return settings
    }

    // MARK: - Defaults

    /// `<hostname>-<port>`: the hostname reduced to the characters names allow (others
    /// become `-`) and cut so the whole name fits in ``QuorumCore/Names/maximumLength`` bytes.
    static func defaultName(hostname: String, port: UInt16) -> String {
        let suffix = "-\(port)"
        var host = String(hostname.unicodeScalars.map { scalar -> Character in
            let allowed = scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                || scalar == "-" || scalar == "_" || scalar == ".")
            return allowed ? Character(scalar) : "-"
        })
        if host.isEmpty { host = "node" }
        let room = Names.maximumLength - suffix.utf8.count
        if host.utf8.count > room { host = String(host.prefix(room)) }
        return host + suffix
    }

    /// The first directory of a systemd `*_DIRECTORY` variable (several are `:`-separated).
    static func systemdDirectory(_ value: String?) -> String? {
        guard let first = value?.split(separator: ":").first, !first.isEmpty else { return nil }
        var directory = String(first)
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        return directory
    }

    /// `sun_path` holds 108 bytes including the terminating NUL.
    static let maximumSocketPath = 107

    // MARK: - Value checks

    static func ipAddress(_ value: SettingValue) throws(SettingsError) -> String {
        if SeedSpec.numericFamily(value.text) != nil { return value.text }
        throw .badValue(value.source, "'\(value.text)' is not an IPv4 or IPv6 address (for example 0.0.0.0 or ::)")
    }

    /// A network interface name as Linux allows it: 1-15 bytes, no '/', ':' or white space.
    static func interfaceName(_ value: SettingValue) throws(SettingsError) -> String {
        let ok = !value.text.isEmpty && value.text.utf8.count <= 15
            && !value.text.contains { $0 == "/" || $0 == ":" || $0.isWhitespace }
        guard ok else { throw .badValue(value.source, "'\(value.text)' is not a network interface name (such as eth0)") }
        return value.text
    }

    static func portNumber(_ value: SettingValue, allowZero: Bool) throws(SettingsError) -> UInt16 {
        let low = allowZero ? 0 : 1
        guard let number = Int(value.text), number >= low, number <= 65535 else {
            throw .badValue(value.source, "'\(value.text)' is not a port number (\(low)-65535\(allowZero ? "; 0 takes any free port" : ""))")
        }
        return UInt16(number)
    }

    static func validName(_ value: SettingValue, what: String) throws(SettingsError) -> String {
        guard Names.isValid(value.text) else {
            throw .badValue(value.source, "'\(value.text)' is not a valid \(what): use 1-64 bytes of letters, digits, '-', '_' and '.'")
        }
        return value.text
    }

    static func path(_ value: SettingValue) throws(SettingsError) -> String {
        guard !value.text.isEmpty else { throw .badValue(value.source, "the path is empty") }
        return value.text
    }

    static func socketPath(_ value: SettingValue) throws(SettingsError) -> String {
        let text = try path(value)
        guard text.utf8.count <= maximumSocketPath else {
            throw .badValue(value.source, "the socket path is longer than \(maximumSocketPath) bytes; choose a shorter one")
        }
        return text
    }

    static func boolean(_ value: SettingValue) throws(SettingsError) -> Bool {
        switch value.text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw .badValue(value.source, "'\(value.text)' is not true or false")
        }
    }

    static func debugLevel(_ value: SettingValue) throws(SettingsError) -> Int {
        if let count = Int(value.text), count >= 0 { return count }
        return try boolean(value) ? 1 : 0
    }

    /// `127.0.0.1:9170`, `[::1]:9170`, `0.0.0.0:9170`, or `:9170` (every address, IPv6 and IPv4).
    static func metricsEndpoint(_ value: SettingValue) throws(SettingsError) -> MetricsEndpoint {
        let text = value.text
        let problem = "'\(text)' is not ADDRESS:PORT (such as 127.0.0.1:9170, [::1]:9170 or :9170)"
        guard let colon = text.lastIndex(of: ":") else { throw .badValue(value.source, problem) }
        var host = String(text[..<colon])
        let portText = String(text[text.index(after: colon)...])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            guard host.contains(":") else { throw .badValue(value.source, problem) }
        } else if host.contains(":") {
            throw .badValue(value.source, problem + "; write an IPv6 address in brackets")
        }
        if host.isEmpty { host = "::" }
        guard SeedSpec.numericFamily(host) != nil else { throw .badValue(value.source, problem) }
        guard let port = UInt16(portText), port > 0 else { throw .badValue(value.source, problem) }
        return MetricsEndpoint(host: host, port: port)
    }

    static func logLevel(_ value: SettingValue) throws(SettingsError) -> Logger.Level {
        guard let level = Logger.Level(rawValue: value.text.lowercased()) else {
            throw .badValue(value.source, "'\(value.text)' is not a log level: use \(logLevelNames.joined(separator: ", "))")
        }
        return level
    }

    static func lossPolicy(_ value: SettingValue) throws(SettingsError) -> QuorumLossPolicy {
        guard let policy = QuorumLossPolicy(rawValue: value.text) else {
            throw .badValue(value.source, "'\(value.text)' is not a policy: use wait or dispatch")
        }
        return policy
    }

    static func nodeCount(_ value: SettingValue) throws(SettingsError) -> Int {
        guard let count = Int(value.text), count >= 1 else {
            throw .badValue(value.source, "'\(value.text)' is not a node count: use a whole number of at least 1")
        }
        return count
    }

    /// A priority, 0 to 255.
    static func priority(_ value: SettingValue) throws(SettingsError) -> UInt8 {
        guard let n = UInt8(value.text) else {
            throw .badValue(value.source, "'\(value.text)' is not a priority: use a whole number from 0 (never master) to 255")
        }
        return n
    }

    /// A delay written `500ms`, `10s` or plain seconds (`2.5`), from 0 to an hour.
    static func delay(_ value: SettingValue) throws(SettingsError) -> Duration {
        try duration(value, within: .zero ... Eligibility.maximumPreemptDelay, what: "a delay from 0 to 3600s")
    }

    /// `--check` and its timing; the timing keys without a check are an error (they would do nothing).
    static func healthCheck(_ value: (SettingKey) -> SettingValue?) throws(SettingsError) -> HealthCheckSettings? {
        guard let given = value(.check) else {
            for key in [SettingKey.checkInterval, .checkTimeout, .checkFall, .checkRise] {
                if let v = value(key) { throw .badValue(v.source, "it needs a check (--check)") }
            }
            return nil
        }
        let words: [String]
        do {
            words = try CommandWords.split(given.text)
        } catch {
            throw .badValue(given.source, "'\(given.text)': \(error.description)")
        }
        guard let program = words.first, !program.isEmpty else { throw .badValue(given.source, "the check command is empty") }
        var check = HealthCheckSettings(command: words)
        typealias D = HealthCheckSettings.Defaults
        if let v = value(.checkInterval) {
            check.interval = try duration(v, within: D.intervalRange, what: "a check interval from 100ms to 3600s")
        }
        check.timeout = min(check.interval, D.maximumTimeout)
        if let v = value(.checkTimeout) {
            check.timeout = try duration(v, within: .milliseconds(1) ... D.maximumTimeout, what: "a check timeout above 0 and at most 60s")
        }
        for (key, what) in [(SettingKey.checkFall, "failures"), (.checkRise, "passes")] {
            guard let v = value(key) else { continue }
            guard let n = Int(v.text), D.countRange.contains(n) else {
                throw .badValue(v.source, "'\(v.text)' is not a number of \(what) from 1 to 100")
            }
            if key == .checkFall { check.fall = n } else { check.rise = n }
        }
        return check
    }

    /// A duration written `200ms`, `1s` or plain seconds (`2.5`), within `range`.
    static func duration(_ value: SettingValue, within range: ClosedRange<Duration>, what: String) throws(SettingsError) -> Duration {
        guard let d = Duration(operatorText: value.text), range.contains(d) else {
            throw .badValue(value.source, "'\(value.text)' is not \(what) (such as 200ms, 1s or 2.5)")
        }
        return d
    }

    /// Seconds, whole or decimal (`30`, `2.5`), more than zero and at most a day.
    static func seconds(_ value: SettingValue) throws(SettingsError) -> Duration {
        guard let number = Double(value.text), number.isFinite, number > 0, number <= 86_400 else {
            throw .badValue(value.source, "'\(value.text)' is not a number of seconds above 0 (at most 86400)")
        }
        let milliseconds = Int64((number * 1000).rounded())
        guard milliseconds >= 1 else {
            throw .badValue(value.source, "'\(value.text)' is below a millisecond")
        }
        return .milliseconds(milliseconds)
    }
}
