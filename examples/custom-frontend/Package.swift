// swift-tools-version:6.1
// A frontend of your own: Fulcrum's frontend with one more processor, compiled in.
// Build: swift build --package-path examples/custom-frontend (from the repository's root).
import PackageDescription

let package = Package(
    name: "custom-frontend",
    dependencies: [
        // Fulcrum itself, by path; in your own project: .package(url: ..., from: ...).
        .package(name: "fulcrum", path: "../.."),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        .executableTarget(
            name: "custom-frontend",
            dependencies: [
                .product(name: "FulcrumFrontend", package: "fulcrum"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
