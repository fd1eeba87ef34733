// swift-tools-version:6.1
import Foundation
import PackageDescription

// libcurl: the static archive of libcurl 8.14 that scripts/fetch-libcurl.sh puts in
// .build-curl (every Makefile target that builds runs it first), so that every binary carries
// the same libcurl whatever the host has; docs/LIBCURL.md says why (Debian 12's 7.88.1
// crashes on an obs-folded header). Its own dependencies are Debian 12's shared libraries,
// named by soname so that no -dev package is needed. Without .build-curl (a plain
// `swift build` before any make target) the host's libcurl is linked instead, and reckerd
// refuses to start on a libcurl older than the one it was tested with.
let curlDirectory = Context.packageDirectory + "/.build-curl"
let curlArchive = curlDirectory + "/lib/libcurl.a"
let curlIsPrivate = Context.environment["RECKER_SYSTEM_LIBCURL"] == nil
    && FileManager.default.fileExists(atPath: curlDirectory + "/VERSION")
let curlSharedDependencies = [
    "nghttp2.so.14", "idn2.so.0", "rtmp.so.1", "ssh2.so.1", "psl.so.5", "ssl.so.3", "crypto.so.3",
    "gssapi_krb5.so.2", "lber-2.5.so.0", "ldap-2.5.so.0", "zstd.so.1", "brotlidec.so.1", "z.so.1",
]
let curlCSettings: [CSetting] = curlIsPrivate ? [.unsafeFlags(["-I" + curlDirectory + "/include"])] : []
let curlSwiftSettings: [SwiftSetting] = curlIsPrivate ? [.unsafeFlags(["-Xcc", "-I" + curlDirectory + "/include"])] : []
let curlLinkerSettings: [LinkerSetting] = curlIsPrivate
    ? [.unsafeFlags([curlArchive] + curlSharedDependencies.map { "-l:lib" + $0 })]
    : [.linkedLibrary("curl")]

let package = Package(
    name: "reckerd",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "ReckerProtocol", targets: ["ReckerProtocol"]),
        .executable(name: "reckerd", targets: ["reckerd"]),
        .executable(name: "recker", targets: ["recker"]),
        .executable(name: "recker-direct", targets: ["recker-direct"]),
    ],
    // Clients that need only ReckerProtocol depend with `traits: []`: then none of the
    // packages below is resolved or fetched (the library uses none of them).
    traits: [
        .default(enabledTraits: ["Daemon"]),
        .trait(name: "Daemon", description: "The daemon, the CLI's fallback, the benchmarks and the tests."),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // Typed wrappers over libcurl's variadic calls; the only C that touches libcurl.
        .target(
            name: "CReckerCurl",
            cSettings: curlCSettings,
            linkerSettings: curlLinkerSettings
        ),
        // libsystemd: notify, socket activation, watchdog, journal. Only the daemon links it.
        .target(
            name: "CReckerSystemd",
            linkerSettings: [.linkedLibrary("systemd")]
        ),
        // What Glibc's module leaves out for the event loop: epoll, eventfd, accept4, peer
        // credentials, signals as bytes.
        .target(name: "CReckerLoop"),
        // The client sessions' rules, pure (no Glibc, no loop, no libcurl): the binary protocol's and
        // the HTTP front's state machines, the HTTP request reader and proxy rules, what a
        // request is to the engine. Events in, actions out.
        .target(name: "ReckerSession", dependencies: ["ReckerProtocol"]),
        // The event loop everything a request touches runs on (epoll, timers, inbox).
        .target(name: "ReckerLoop", dependencies: ["CReckerLoop"]),
        // Wire format and client library. No NIO and no Foundation, so clients stay small.
        .target(name: "ReckerProtocol"),
        // The libcurl engine and the pool policy.
        .target(
            name: "ReckerPool",
            dependencies: [
                "CReckerCurl",
                "ReckerLoop",
                "ReckerProtocol",
                "ReckerSession",
                .product(name: "Histogram", package: "hdrhistogram-swift", condition: .when(traits: ["Daemon"])),
            ],
            swiftSettings: curlSwiftSettings
        ),
        .executableTarget(
            name: "reckerd",
            dependencies: [
                "CReckerLoop",
                "CReckerSystemd",
                "ReckerLoop",
                "ReckerPool",
                "ReckerProtocol",
                "ReckerSession",
                .product(name: "Logging", package: "swift-log", condition: .when(traits: ["Daemon"])),
            ]
        ),
        // The curl-like CLI's logic, shared by `recker` and its fallback helper. No Foundation.
        .target(name: "ReckerCLI", dependencies: ["ReckerProtocol"]),
        // The curl-like CLI: a fully static executable, so it starts in well under a millisecond.
        .executableTarget(
            name: "recker",
            dependencies: ["ReckerCLI", "ReckerProtocol"],
            linkerSettings: [.unsafeFlags(["-static-executable"])]
        ),
        // `recker --fallback` without a daemon: the same CLI on an in-process libcurl engine.
        .executableTarget(
            name: "recker-direct",
            dependencies: ["ReckerCLI", "ReckerLoop", "ReckerPool", "ReckerProtocol", "ReckerSession"]
        ),
        // The protocol decoder's fuzz target (scripts/fuzz.sh); built plainly it replays a corpus.
        .executableTarget(
            name: "ReckerFuzz",
            dependencies: ["ReckerProtocol", "ReckerSession"],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        // The benchmarks' load generator (bench/): speaks the protocol from many connections.
        .executableTarget(
            name: "recker-load",
            dependencies: ["ReckerLoop", "ReckerProtocol"],
            path: "bench/load"
        ),
        // Real upstreams and a real daemon for the tests: nginx with TLS and h2, a Swift
        // fault-injection server, and helpers to run the binaries.
        .target(
            name: "ReckerTestSupport",
            dependencies: [
                "ReckerProtocol",
                .product(name: "NIOCore", package: "swift-nio", condition: .when(traits: ["Daemon"])),
                .product(name: "NIOPosix", package: "swift-nio", condition: .when(traits: ["Daemon"])),
                .product(name: "NIOHTTP1", package: "swift-nio", condition: .when(traits: ["Daemon"])),
            ],
            path: "Tests/ReckerTestSupport",
            exclude: ["h2_fault.py", "hostile_upstream.py"]
        ),
        .testTarget(name: "ReckerProtocolTests", dependencies: ["ReckerProtocol"]),
        // The event loop turned by hand on a manual clock.
        .testTarget(name: "ReckerLoopTests", dependencies: ["ReckerLoop"]),
        .testTarget(
            name: "ReckerPoolTests",
            dependencies: ["ReckerLoop", "ReckerPool", "ReckerProtocol", "ReckerSession", "ReckerTestSupport"]
        ),
        // The sessions' pure rules (machines, HTTP reader and proxy rules) without a socket.
        .testTarget(name: "ReckerSessionTests", dependencies: ["ReckerProtocol", "ReckerSession"]),
        // The CLI's pure parts (the cookie jar) without a process.
        .testTarget(name: "ReckerCLITests", dependencies: ["ReckerCLI"]),
        .testTarget(
            name: "reckerdTests",
            dependencies: ["ReckerProtocol", "ReckerTestSupport"],
            // Read by path (CLICorpusParityTests), not a resource of the bundle.
            exclude: ["Parity/curl-invocations.tsv"]
        ),
    ]
)
