// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "rc-agent",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "rc-agent", targets: ["rc-agent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        // No default traits: `FullFoundation` and `ConfigurationSupport` (swift-configuration) link
        // full Foundation and ICU into the binary (docs/ARCHITECTURE.md, "FoundationEssentials only").
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // The stand-in's upload route checksums what it receives (SHA-256; Foundation has none on Linux).
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        // Tests only (RCAgentTestSupport): the children of the test process. Foundation's
        // Process.run() reads past glibc's readdir buffer on Linux up to Swift 6.3.1
        // (swift-corelibs-foundation#5472) and now and then crashed the whole test run.
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibSecret",
            pkgConfig: "libsecret-1",
            providers: [.apt(["libsecret-1-dev"])]
        ),
        // Loads libsecret at its first use instead of at every start (Sources/CLibSecretLoader/loader.c).
        // An ignored `hidden` would let other libraries bind to these forwarders: an error, not a warning.
        .target(
            name: "CLibSecretLoader", dependencies: ["CLibSecret"], cSettings: [.unsafeFlags(["-Werror=attributes"])]),
        // The Linux kernel keyring (the `keyctl` backend).
        .systemLibrary(
            name: "CKeyutils",
            pkgConfig: "libkeyutils",
            providers: [.apt(["libkeyutils-dev"])]
        ),
        // epoll, eventfd and accept4, which Swift's Glibc module leaves out (the agent's front door).
        .systemLibrary(name: "CEpoll"),
        // Domain and contracts: Secret, clock, settings and config, tenant URL, typed error codes,
        // the socket API's wire types, and the protocols of every I/O edge. No NIO, no
        // Hummingbird, no libsecret.
        .target(
            name: "RCAgentCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The agent: token cache, routes, socket server and the services it runs.
        .target(
            name: "RCAgentDaemon",
            dependencies: [
                "CEpoll",
                "RCAgentCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The client side of the socket: agent client and launcher, bearer session, `api`, `doctor`.
        .target(
            name: "RCAgentClient",
            dependencies: ["RCAgentCore", .product(name: "NIOHTTP1", package: "swift-nio")]
        ),
        // The real edges (libsecret, the kernel keyring, secret files and variables, the tenant over HTTPS, notifications, DNS, the terminal) and
        // the one composition root that builds them from settings.
        .target(
            name: "RCAgentLive",
            dependencies: [
                "CLibSecret",
                "CLibSecretLoader",
                "CKeyutils",
                "RCAgentCore",
                "RCAgentDaemon",
                "RCAgentClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        // Commands and the views that turn reports into text and JSON for people.
        .executableTarget(
            name: "rc-agent",
            dependencies: [
                "RCAgentCore",
                "RCAgentDaemon",
                "RCAgentClient",
                "RCAgentLive",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Shared by both test targets: test clock, fakes, process and curl runners, the sandbox and
        // the logged-in-agent fixture.
        .target(
            name: "RCAgentTestSupport",
            dependencies: [
                "RCAgentCore", "RCAgentDaemon", "RCAgentClient", "RCAgentLive", "RiskCloudStandIn",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            path: "Tests/RCAgentTestSupport"
        ),
        // The local Risk Cloud stand-in: tests and `make demo` only, never installed.
        .target(
            name: "RiskCloudStandIn",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                // The TLS mode: the diagnosed TLS cases (wrong host, unknown CA, expired) end to end.
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "rc-standin",
            dependencies: [
                "RiskCloudStandIn",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // `make bench` / `make soak`: a load, burst and bad-input client for the agent's socket.
        .executableTarget(
            name: "rc-bench",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                "RCAgentCore",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "RCAgentCoreTests",
            dependencies: [
                "RCAgentCore", "RCAgentDaemon", "RCAgentClient", "RCAgentLive", "RCAgentTestSupport", "RiskCloudStandIn", "rc-agent",
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["RCAgentCore", "RCAgentTestSupport", "RiskCloudStandIn"]
        ),
    ]
)
