import Subprocess
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs one program in a process group of its own, without a shell, with a deadline: the
/// one way quorumd starts a program (role hooks and health checks). On the deadline the whole
/// group gets SIGTERM and, `grace` later, SIGKILL (at once when `grace` is zero); the run
/// ends when the program itself exits. The group is also killed if the calling task is cancelled
/// (swift-subprocess's teardown sequence).
enum ProcessGroupRun {
    /// How a hook or check file is started, decided from the file system.
    enum Launch: Equatable {
        case direct(path: String)
        case python(path: String)
        case missing
        case notExecutable

        /// The file itself when it is executable, else `python3 FILE` for a `.py` file (the
        /// original's hooks have no `#!` and no execute bit).
        static func of(_ path: String) -> Launch {
            var info = stat()
            guard stat(path, &info) == 0 else { return .missing }
            let isRegular = (info.st_mode & S_IFMT) == S_IFREG
            if isRegular && access(path, X_OK) == 0 { return .direct(path: path) }
            if isRegular && path.hasSuffix(".py") { return .python(path: path) }
            return .notExecutable
        }

        /// The program and the arguments before the caller's, or nil when it cannot start.
        var start: (Executable, [String])? {
            switch self {
            case .direct(let file): (.path(.init(stringLiteral: file)), [])
            case .python(let file): (.name("python3"), [file])
            case .missing, .notExecutable: nil
            }
        }
    }

    /// A path taken from the working directory at run time when it is relative.
    static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        guard let cwd = getcwd(nil, 0) else { return path }
        defer { free(cwd) }
        return String(cString: cwd) + "/" + path
    }

    private enum RunEvent: Sendable {
        case ended(HookOutcome)
        case deadline
        case graceOver
    }

    /// Runs `executable` and hands its standard output and error to `read` while it runs.
    /// `onDeadline` is called once if the deadline passes (for a log line).
    static func run(
        _ executable: Executable, arguments: [String], environment: [String: String], timeout: Duration, grace: Duration = .zero,
        onDeadline: @escaping @Sendable () -> Void = {},
        read: @escaping @Sendable (SubprocessOutputSequence, SubprocessOutputSequence) async -> Void
    ) async -> HookOutcome {
        var update: [Environment.Key: String?] = [:]
        for (key, value) in environment { update[Environment.Key(rawValue: key)!] = value }
        var platformOptions = PlatformOptions()
        platformOptions.processGroupID = 0  // a new group, led by the program (pgid == pid)
        platformOptions.teardownSequence = [.send(signal: .kill, toProcessGroup: true, allowedDurationToNextStep: .zero)]
        let options = platformOptions
        let inherited = Environment.inherit.updating(update)
        let groupID = ProcessGroupBox()
        return await withTaskGroup(of: RunEvent.self) { group -> HookOutcome in
            group.addTask {
                do {
                    let result = try await Subprocess.run(
                        executable, arguments: Arguments(arguments), environment: inherited, platformOptions: options,
                        input: .none, output: .sequence, error: .sequence
                    ) { execution in
                        groupID.set(execution.processIdentifier.value)
                        await read(execution.standardOutput, execution.standardError)
                    }
                    switch result.terminationStatus {
                    case .exited(let code): return .ended(.exited(code))
                    case .signaled(let signal): return .ended(.signaled(signal))
                    }
                } catch {
                    return .ended(.failedToStart("\(error)"))
                }
            }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                    return .deadline
                } catch {
                    return .ended(.notRun)  // cancelled: the program ended first
                }
            }
            var timedOut = false
            while let event = await group.next() {
                switch event {
                case .deadline:
                    timedOut = true
                    onDeadline()
                    guard let pgid = groupID.value else { continue }
                    if grace <= .zero {
                        kill(-pgid, SIGKILL)
                    } else {
                        kill(-pgid, SIGTERM)
                        group.addTask {
                            do {
                                try await Task.sleep(for: grace)
                                return .graceOver
                            } catch {
                                return .ended(.notRun)
                            }
                        }
                    }
                case .graceOver:
                    if let pgid = groupID.value { kill(-pgid, SIGKILL) }
                case .ended(let outcome):
                    group.cancelAll()
                    return timedOut ? .timedOut : outcome
                }
            }
            return timedOut ? .timedOut : .notRun
        }
    }
}

/// The program's process group id, published by the task that started it to the task that
/// may have to kill it.
private final class ProcessGroupBox: Sendable {
    private let storage = Mutex<pid_t?>(nil)
    func set(_ pgid: pid_t) { storage.withLock { $0 = pgid } }
    var value: pid_t? { storage.withLock { $0 } }
}
