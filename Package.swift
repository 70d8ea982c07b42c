// swift-tools-version: 6.1
// wirelab — a Swift software router / switch / load-balancer lab for Linux.
// Layers (dependencies point down only): Wire → Datapath, Topology → LinuxNet → Lab → Bench → WirelabCommands → wirelab.
import PackageDescription

// The per-packet path (elements, ports, the daemon's loop) keeps state in
// classes; Swift checks exclusive access to class properties at run time
// (swift_beginAccess, a TLS lookup each), which cost the switch more than its
// own work. Release builds of those targets skip the checks; debug builds —
// the ones the tests run — keep them, so a violation still fails a test.
let hotPathSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "wirelab",
    products: [
        .executable(name: "wirelab", targets: ["wirelab"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C: system libraries found with pkg-config, and a small shim.
        .systemLibrary(name: "CXDP", pkgConfig: "libxdp", providers: [.apt(["libxdp-dev", "libbpf-dev"])]),
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        .target(name: "CLinuxShim"),

        // Swift layers.
        .target(name: "Wire"),
        .target(name: "Datapath", dependencies: ["Wire"], swiftSettings: hotPathSettings),
        .target(name: "Topology", dependencies: ["Wire", .product(name: "Yams", package: "Yams")]),
        .target(name: "LinuxNet", dependencies: ["Wire", "CXDP", "CPcap", "CLinuxShim"], swiftSettings: hotPathSettings),
        .target(name: "Lab", dependencies: ["Wire", "Datapath", "Topology", "LinuxNet"], swiftSettings: hotPathSettings),
        // `wirelab bench …`: generators, sinks, kernel peers, placements, reports.
        .target(name: "Bench", dependencies: ["Wire", "Datapath", "Topology", "LinuxNet", "Lab", "CXDP", "CLinuxShim"],
                swiftSettings: hotPathSettings),
        .target(name: "WirelabCommands", dependencies: [
            "Lab", "Bench", "LinuxNet", "Topology", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "wirelab", dependencies: ["WirelabCommands"]),
        .executableTarget(name: "director-bench", dependencies: ["Datapath", "CMallocCounter"], path: "Benchmarks/DirectorBench"),
        .executableTarget(name: "wire-bench", dependencies: ["Wire", "CMallocCounter"], path: "Benchmarks/WireBench"),
        // The one malloc counter: linked into wire-bench and director-bench; `bench forward` preloads the same source
        // into the daemon (embedded by scripts/embed-c-sources.sh in Sources/Bench/Generated).
        .target(name: "CMallocCounter", path: "Benchmarks/CMallocCounter"),
        .target(name: "FuzzSupport"),  // the random stream and byte mutations both fuzzers share
        .executableTarget(name: "wire-fuzz", dependencies: ["Wire", "FuzzSupport"], path: "Sources/WireFuzz"),
        // element-fuzz: frames through every element (the host model is in Lab); in no product.
        .target(name: "ElementFuzz", dependencies: ["Wire", "Datapath", "Lab", "FuzzSupport"]),
        .executableTarget(name: "element-fuzz", dependencies: ["ElementFuzz"], path: "Sources/ElementFuzzTool"),

        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "DatapathTests", dependencies: ["Datapath", "Wire"]),
        .testTarget(name: "TopologyTests", dependencies: ["Topology"], resources: [.copy("Fixtures")]),
        .testTarget(name: "LinuxNetTests", dependencies: ["LinuxNet", "Wire", "CXDP", "CPcap", "CLinuxShim"]),
        .testTarget(name: "ElementFuzzTests", dependencies: ["ElementFuzz", "FuzzSupport", "Datapath", "Wire"]),
        .testTarget(name: "LabTests", dependencies: ["Lab", "Bench", "WirelabCommands", "Wire", "LinuxNet", "Topology"]),
    ],
    swiftLanguageModes: [.v6]
)
