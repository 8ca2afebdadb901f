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
