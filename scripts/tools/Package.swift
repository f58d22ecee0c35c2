// swift-tools-version:6.1
// Builds the protoc plugins (protoc-gen-swift, protoc-gen-grpc-swift-2) from the package copies,
// once, for scripts/generate-protos. Not part of the product: the root package never uses it.
import PackageDescription

let package = Package(
    name: "fulcrum-codegen-tools",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", exact: "2.4.1"),
    ],
    targets: [
        .target(name: "CodegenTools", path: "Sources")
    ]
)
