import QuorumCore

/// What `--version` prints, the same for both programs. The version is the package's
/// (packaging/debian/changelog carries it too; a test keeps the two equal).
public enum BuildInfo {
    public static let version = "0.2.0"

    /// How this binary was built: configuration, compiler and machine.
    public static var build: String {
        #if DEBUG
        let configuration = "debug"
        #else
        let configuration = "release"
        #endif
        #if compiler(>=6.3)
        let compiler = "Swift 6.3"
        #elseif compiler(>=6.2)
        let compiler = "Swift 6.2"
        #else
        let compiler = "Swift 6"
        #endif
        #if arch(x86_64)
        let machine = "x86_64"
        #elseif arch(arm64)
        let machine = "aarch64"
        #else
        let machine = "other"
        #endif
        return "\(configuration), \(compiler), \(machine)"
    }

    /// `quorumd 0.2.0 (protocol 2, build release, Swift 6.3, x86_64)`, then the protocol
    /// versions this build reads.
    public static func versionText(program: String) -> String {
        """
        \(program) \(version) (protocol \(WireFormat.version), build \(build))
        speaks protocol versions \(WireFormat.lowestVersion) to \(WireFormat.version)
        """
    }
}
