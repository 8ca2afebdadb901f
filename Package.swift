// swift-tools-version:6.0
import PackageDescription

// Release builds of the two programs link with lld so that the loader has less to do and
// to keep in memory: the relative relocations are packed (DT_RELR, glibc 2.36 and later,
// Debian 12), and no symbol is exported (the static Swift runtime asks for
// --export-dynamic, which put 19 000 symbols in the dynamic table that every library lookup
// searched). A node of the Debian package went from 20.5 MB to 17.5 MB resident.
let leanExecutable: [LinkerSetting] = [
    .unsafeFlags(
        ["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic"],
        .when(platforms: [.linux], configuration: .release)),
]

let package = Package(
    name: "quorum",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "quorumd", targets: ["QuorumService"]),
        .executable(name: "quorumctl", targets: ["quorumctl"]),
        .executable(name: "quorum-sim", targets: ["quorum-sim"]),
        .library(name: "QuorumCore", targets: ["QuorumCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // The election core: a pure state machine. It imports nothing that does I/O or reads a clock.
        .target(name: "QuorumCore"),

        // The deterministic cluster simulator that drives QuorumCore through fault schedules.
        .target(name: "QuorumSimulator", dependencies: ["QuorumCore"]),
        .executableTarget(name: "quorum-sim", dependencies: [
            "QuorumSimulator",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // The control-socket protocol shared by quorumd and quorumctl (no NIO: quorumctl stays
        // small). It takes the rule for node names from the pure core.
        .target(name: "QuorumControl", dependencies: ["QuorumCore"]),
        // The control socket's server side, on NIO.
        .target(name: "QuorumControlServer", dependencies: [
            "QuorumControl",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),

        // libsystemd (sd_notify, the journal's native API), from Debian's libsystemd-dev.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .target(name: "QuorumSystemd", dependencies: [
            "CSystemd",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // The cluster key: sealed frames and datagrams (ChaCha20-Poly1305), bound to each link.
        .target(name: "QuorumSecurity", dependencies: [
            "QuorumCore",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),

        // The I/O shell around the core: sockets, timers, hooks, persistence, control socket.
        .target(name: "QuorumNode", dependencies: [
            "QuorumCore", "QuorumControl", "QuorumControlServer", "QuorumSystemd", "QuorumSecurity",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "Subprocess", package: "swift-subprocess"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "QuorumService", dependencies: [
            "QuorumNode", "QuorumCore", "QuorumControlServer", "QuorumSystemd", "QuorumSecurity",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], linkerSettings: leanExecutable),
        .executableTarget(name: "quorumctl", dependencies: [
            "QuorumControl", "QuorumCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], linkerSettings: leanExecutable),

        .testTarget(name: "QuorumCoreTests", dependencies: ["QuorumCore", "QuorumSimulator"]),
        .testTarget(name: "QuorumSecurityTests", dependencies: ["QuorumSecurity", "QuorumCore"]),
        .testTarget(name: "QuorumControlTests", dependencies: [
            "QuorumControl", "QuorumControlServer", "QuorumCore",
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Temporary directories, files and a fake sd_notify socket, for the tests below.
        .target(name: "QuorumTestSupport", path: "Tests/QuorumTestSupport"),
        .testTarget(name: "QuorumSystemdTests", dependencies: ["QuorumSystemd", "QuorumTestSupport"]),
        .testTarget(name: "QuorumNodeTests", dependencies: [
            "QuorumNode", "QuorumCore", "QuorumSystemd", "QuorumSecurity", "QuorumControl", "QuorumTestSupport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "QuorumIntegrationTests", dependencies: ["QuorumControl", "QuorumCore", "QuorumSecurity"]),
    ]
)
