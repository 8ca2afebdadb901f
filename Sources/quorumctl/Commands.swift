import QuorumCore
import ArgumentParser
import Foundation
import QuorumControl

struct Quorumctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quorumctl",
        abstract: "Ask a running quorum node.",
        discussion: """
            Without -n or --socket, the only node on this host is asked (the only \
            /run/quorum/*/control.sock). Exit status: 0 answered; 2 for `status` when the node \
            is not quorate; 1 the node cannot be reached or refused; 3 for `step-down` when no \
            handover was confirmed in time; 64 wrong usage.
            """,
        version: BuildInfo.versionText(program: "quorumctl"),
        subcommands: [Status.self, Peers.self, Leave.self, Forget.self, Reload.self, Watch.self, StepDown.self, Standby.self, Keygen.self]
    )

    @OptionGroup var target: TargetOptions

    func run() throws {
        let words = ControlRequest.Command.allCases.map(\.rawValue)
        throw ValidationError("missing command: \(words.dropLast().joined(separator: ", ")) or \(words.last!)")
    }
}

/// Which node to ask. Given before the command (`quorumctl -n B status`).
struct TargetOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: ArgumentHelp("Ask node NAME (socket /run/quorum/NAME/control.sock).", valueName: "NAME"))
    var name: String?

    @Option(name: .customLong("socket"), help: ArgumentHelp("Ask the node listening on this control socket.", valueName: "PATH"),
            completion: .file())
    var socket: String?

    func validate() throws {
        if name != nil && socket != nil {
            throw ValidationError("give either -n/--name or --socket, not both")
        }
        if let name { try validateNodeName(name) }
        if let socket, socket.isEmpty {
            throw ValidationError("--socket needs a path")
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the node's role, master and quorum (exit 2 when not quorate).")

    @ParentCommand var parent: Quorumctl
    @Flag(help: "Print one JSON object instead of a table.") var json = false

    func run() throws {
        guard case .status(let report) = try ask(.status, parent.target) else { throw unexpectedAnswer() }
        print(json ? encodeJSON(report) : report.table, terminator: json ? "\n" : "")
        if !report.quorate { throw ExitCode(2) }
    }
}

struct Peers: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the other nodes the node knows.")

    @ParentCommand var parent: Quorumctl
    @Flag(help: "Print a JSON array instead of a table.") var json = false

    func run() throws {
        guard case .peers(let peers) = try ask(.peers, parent.target) else { throw unexpectedAnswer() }
        if json {
            print(encodeJSON(peers))
            return
        }
        // The seeds are part of the node's status (peers --json stays an array of peers).
        var seeds: [SeedReport] = []
        if case .status(let status)? = try? ask(.status, parent.target) { seeds = status.seeds ?? [] }
        print(PeerReport.table(peers) + SeedReport.table(seeds), terminator: "")
    }
}

struct Leave: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the node leave gracefully: it tells its peers and stops.")

    @ParentCommand var parent: Quorumctl

    func run() throws {
        // The node answers after telling its peers, which may take a moment (hooks, timeouts).
        guard case .accepted(let message) = try ask(.leave, parent.target, timeout: .seconds(35)) else {
            throw unexpectedAnswer()
        }
        if !message.isEmpty { print(message) }
    }
}

struct Forget: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drop a lost or dispatched node from the membership, so it no longer counts toward the majority.")

    @ParentCommand var parent: Quorumctl
    @Argument(help: ArgumentHelp("The node to forget.", valueName: "PEER_NAME")) var peerName: String

    func validate() throws {
        try validateNodeName(peerName)
    }

    func run() throws {
        guard case .accepted(let message) = try ask(.forget(peer: peerName), parent.target) else {
            throw unexpectedAnswer()
        }
        if !message.isEmpty { print(message) }
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the node read its configuration again and apply it, all or nothing (exit 1 when refused).")

    @ParentCommand var parent: Quorumctl
    @Flag(help: "Print one JSON object instead of a line.") var json = false

    func run() throws {
        // The node answers once the reload is over (systemd's ExecReload waits for this).
        let response = try ask(.reload, parent.target, timeout: .seconds(30), refusalIsAnswer: true)
        guard case .reload(let report) = response else { throw unexpectedAnswer() }
        if json {
            print(encodeJSON(report))
        } else if report.applied {
            print(report.line)
            for warning in report.warnings { fail("warning: \(warning)") }
        } else {
            fail(report.line)
        }
        if !report.applied { throw ExitCode(1) }
    }
}

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow the node's events: a snapshot, then one line per event, until interrupted.")

    @ParentCommand var parent: Quorumctl
    @Flag(help: "One JSON object per line (each has type, node, instance, epoch and time).") var json = false
    @Flag(help: "When the node goes away, wait for it and go on with a new snapshot (until interrupted).") var reconnect = false

    func run() throws {
        while true {
            var ended: ControlClientError? = nil
            do {
                try watchOnce()
            } catch let error as ControlClientError {
                ended = error
            }
            guard reconnect else {
                if let ended {
                    fail(ended.description)
                    throw ExitCode(1)
                }
                return
            }
            // The node restarts: try again every 200 ms (its socket comes back when it is up).
            usleep(200_000)
        }
    }

    /// One connection: prints every line until the node closes it.
    private func watchOnce() throws {
        let path = try socketPath(parent.target)
        var refused: String? = nil
        try ControlClient.stream(.watch, socketPath: path) { line in
            if let event = try? WatchEvent.parse(line) {
                // Unbuffered: a pipe (`| grep`) sees each event as it happens.
                FileHandle.standardOutput.write(Data(((json ? String(decoding: line, as: UTF8.self) : event.text) + "\n").utf8))
                return true
            }
            if case .failure(let message)? = try? ControlResponse.parse(line) { refused = message }
            return false
        }
        if let refused {
            fail("the node refused: \(refused)")
            throw ExitCode(1)
        }
    }
}

struct StepDown: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step-down",
        abstract: "Hand the master role over in order: the master's slave hook first, then the new master's hook.",
        discussion: """
            Asked of any node: it forwards the request to the master. Without --to, the best \
            eligible member other than the master takes over. Nothing lasting is left behind: \
            the old master may be master again later (a higher priority preempts as usual). \
            Exit status: 0 done; 1 refused, nothing changed; 3 no new master within --timeout.
            """)

    @ParentCommand var parent: Quorumctl
    @Option(help: ArgumentHelp("The member that should take over.", valueName: "NAME")) var to: String?
    @Option(help: ArgumentHelp("How long to wait for the new master, 1s to 300s (default 10s); the old master stays out of elections this long at most.", valueName: "DURATION"))
    var timeout: String?
    @Flag(help: "Print one JSON object instead of a line.") var json = false

    func validate() throws {
        if let to { try validateNodeName(to) }
        _ = try milliseconds()
    }

    func milliseconds() throws -> Int {
        guard let timeout else { return ControlRequest.defaultStepDownMilliseconds }
        guard let d = Duration(operatorText: timeout), ControlRequest.stepDownMilliseconds.contains(Int(d.nanosecondsClamped / 1_000_000)) else {
            throw ValidationError("--timeout '\(timeout)' is not a duration from 1s to 300s (such as 10s or 2500ms)")
        }
        return Int(d.nanosecondsClamped / 1_000_000)
    }

    func run() throws {
        let ms = try milliseconds()
        // The node answers once the new master is known, or at the timeout.
        let response = try ask(.stepDown(to: to, timeoutMilliseconds: ms), parent.target, timeout: .milliseconds(ms) + .seconds(5), refusalIsAnswer: true)
        guard case .stepDown(let report) = response else { throw unexpectedAnswer() }
        if json {
            print(encodeJSON(report))
        } else if report.ok {
            print(report.line)
        } else {
            fail(report.line)
        }
        if !json, let warning = report.warning { fail("warning: \(warning)") }
        if report.exitStatus != 0 { throw ExitCode(report.exitStatus) }
    }
}

struct Standby: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the node a voting member that may not be master (on), or let it be master again (off).",
        discussion: """
            A master in standby hands over in order. Standby is kept in the node's state \
            directory across restarts unless --until-restart is given; `status` and \
            `systemctl status` show it. A node out of standby takes the role back only by a \
            higher priority, never by its age or port.
            """)

    enum Setting: String, ExpressibleByArgument, CaseIterable {
        case on, off
    }

    @ParentCommand var parent: Quorumctl
    @Argument(help: ArgumentHelp("on or off.", valueName: "on|off")) var setting: Setting
    @Flag(name: .customLong("until-restart"), help: "Standby only until the node restarts (not written to its state directory).")
    var untilRestart = false

    func validate() throws {
        if untilRestart && setting == .off { throw ValidationError("--until-restart goes with 'on'") }
    }

    func run() throws {
        guard case .accepted(let message) = try ask(.standby(on: setting == .on, untilRestart: untilRestart), parent.target) else {
            throw unexpectedAnswer()
        }
        if !message.isEmpty { print(message) }
    }
}

/// A node name given on the command line, checked by the one rule for names (`Names`).
func validateNodeName(_ name: String) throws {
    guard Names.isValid(name) else {
        throw ValidationError("invalid node name '\(name)': \(ControlProtocol.nameRule)")
    }
}

// MARK: - Talking to the node

/// Resolves the socket, sends the request, and turns every way of not getting a usable answer
/// into a `quorumctl: …` line on stderr and the right exit status.
/// `refusalIsAnswer`: a refusal that carries a report (a refused reload) is returned for the
/// command to print, not turned into `the node refused`.
func ask(_ request: ControlRequest, _ target: TargetOptions, timeout: Duration = .seconds(5), refusalIsAnswer: Bool = false) throws -> ControlResponse {
    let path = try socketPath(target)
    let response: ControlResponse
    do {
        response = try ControlClient.send(request, socketPath: path, timeout: timeout)
    } catch {
        fail(error.description)
        throw ExitCode(1)
    }
    if refusalIsAnswer, case .reload = response { return response }
    if refusalIsAnswer, case .stepDown = response { return response }
    if case .failure(let message) = response {
        fail("the node refused: \(message)")
        throw ExitCode(1)
    }
    return response
}

/// The control socket the options point at.
func socketPath(_ target: TargetOptions) throws -> String {
    if let socket = target.socket { return socket }
    if let name = target.name { return ControlSocketLocator.socketPath(forNode: name) }
    do {
        return try ControlSocketLocator.find()
    } catch {
        fail(error.description)
        // Several nodes: the command needs -n to mean anything (usage); none: nothing to reach.
        throw ExitCode(error.namesFound.isEmpty ? 1 : 64)
    }
}

func unexpectedAnswer() -> ExitCode {
    fail("the node sent an answer of the wrong kind")
    return ExitCode(1)
}

func fail(_ message: String) {
    FileHandle.standardError.write(Data("quorumctl: \(message)\n".utf8))
}

func encodeJSON<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    // These report types always encode (their floating point values are finite durations).
    return String(decoding: try! encoder.encode(value), as: UTF8.self)
}
