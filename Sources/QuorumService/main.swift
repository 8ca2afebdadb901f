import QuorumNode

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

switch command {
case .help(let usage):
    print(usage)
    exit(0)
case .run(let settings):
    // TODO(shell): bootstrap logging (LoggingSystem.bootstrapQuorum(debug: settings.debug)),
    // then start the QuorumNode with `settings` in a ServiceGroup together with a HookRunner
    // (timeout: settings.hookTimeout) and the control socket server, and exit with the
    // node's status (0, or 3 after dispatching in a minority). Until the node exists,
    // quorumd prints the resolved settings and exits 0.
    print(settings)
    exit(0)
}
