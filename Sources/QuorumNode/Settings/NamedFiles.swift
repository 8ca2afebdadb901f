import QuorumSecurity

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The files settings name besides `--config`: the cluster key (read at start, at every
/// reload and by `--check-config`) and the hooks (only looked at: they run later).
public enum NamedFiles {
    /// Reads and parses the key file. A file others may read or write is refused: the key is
    /// the cluster's one secret.
    public static func loadKeyring(_ path: String, readFile: (String) throws -> String = ProcessContext.readTextFile) throws(SettingsError) -> ClusterKeyring {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw SettingsError("cannot read key file \(path): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & 0o007 == 0 else {
            throw SettingsError("key file \(path) is readable or writable by others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        let text: String
        do {
            text = try readFile(path)
        } catch {
            throw SettingsError("cannot read key file \(path): \(error)")
        }
        do {
            return try ClusterKeyring(parsing: text, path: path)
        } catch {
            throw SettingsError(error.description)
        }
    }

    /// Why the health check's program cannot start, if it cannot: a path must be a file that
    /// is executable (or a `.py` file); a bare name must be found in `PATH`. An error at start,
    /// at a reload and for `--check-config`: a check that can never pass would keep the node
    /// from ever being master.
    public static func checkProblem(_ settings: NodeSettings, path: String? = ProcessContext.environment()["PATH"]) -> String? {
        guard let program = settings.check?.command.first else { return nil }
        if program.contains("/") {
            switch HookRunner.launch(for: HookRunner.absolute(program)) {
            case .direct, .python: return nil
            case .missing: return "check \(program): file not found"
            case .notExecutable: return "check \(program): not executable (and not a .py file)"
            }
        }
        let directories = (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init)
        if directories.contains(where: { access($0 + "/" + program, X_OK) == 0 }) { return nil }
        return "check \(program): not found in PATH"
    }

    /// What would stop a hook from running, one line each (`master-hook /x: file not found`).
    /// Warnings, not errors: a hook may be installed after the node starts, and a missing
    /// hook is logged when it is due.
    public static func hookWarnings(_ settings: NodeSettings) -> [String] {
        var warnings: [String] = []
        for (key, path) in [("master-hook", settings.masterHook), ("slave-hook", settings.slaveHook)] {
            guard let path else { continue }
            switch HookRunner.launch(for: HookRunner.absolute(path)) {
            case .direct, .python: break
            case .missing: warnings.append("\(key) \(path): file not found")
            case .notExecutable: warnings.append("\(key) \(path): not executable (and not a .py file)")
            }
        }
        return warnings
    }
}
