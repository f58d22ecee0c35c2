// swift-tools-version:6.1
// Fulcrum: a disaggregated prediction service cluster. See docs/architecture.md.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let grpcCore = Target.Dependency.product(name: "GRPCCore", package: "grpc-swift-2")
let grpcHTTP2 = Target.Dependency.product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport")
let grpcProtobuf = Target.Dependency.product(name: "GRPCProtobuf", package: "grpc-swift-protobuf")
let swiftProtobuf = Target.Dependency.product(name: "SwiftProtobuf", package: "swift-protobuf")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")
let metrics = Target.Dependency.product(name: "Metrics", package: "swift-metrics")
let prometheus = Target.Dependency.product(name: "Prometheus", package: "swift-prometheus")
let tracing = Target.Dependency.product(name: "Tracing", package: "swift-distributed-tracing")
// OpenTelemetry: the tracer, W3C propagation and the OTLP exporters (HTTP/protobuf and gRPC).
let otel = Target.Dependency.product(name: "OTel", package: "swift-otel")

let package = Package(
    name: "fulcrum",
    products: [
        .executable(name: "fulcrum", targets: ["fulcrum"]),
        .executable(name: "fulcrum-frontend", targets: ["fulcrum-frontend"]),
        .executable(name: "fulcrum-worker", targets: ["fulcrum-worker"]),
        .executable(name: "fulcrum-balancer", targets: ["fulcrum-balancer"]),
        .executable(name: "fulcrum-bench", targets: ["fulcrum-bench"]),
        .executable(name: "fulcrum-fuzz", targets: ["fulcrum-fuzz"]),
        // For custom frontends with their own processors (examples/custom-frontend).
        .library(name: "FulcrumFrontend", targets: ["FulcrumFrontend", "FulcrumFrontendCommand", "FulcrumCommandLine", "FulcrumSchema"]),
    ],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", exact: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", exact: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", exact: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel", exact: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", exact: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", exact: "1.8.0"),
        // mTLS between the tiers: certificates, their roles, and `fulcrum certs` (ClusterTLS).
        .package(url: "https://github.com/apple/swift-certificates", exact: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", exact: "1.7.4"),
        // The frontend's feature_lookup processor reads an online feature store in PostgreSQL.
        .package(url: "https://github.com/vapor/postgres-nio", exact: "1.33.2"),
    ],
    targets: [
        // System libraries.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // The Vulkan API's headers (libvulkan-dev) and a loader opened with dlopen on first use:
        // nothing links libvulkan.so.1 (Sources/CVulkan/include/CVulkan.h).
        .target(name: "CVulkan"),
        // Fulcrum's AVX-512 / AVX2 matrix-product microkernels for constant weights
        // (CPUBackend+PackedGEMM.swift), chosen by CPUID at run time. Always optimised: a debug
        // build's tests would otherwise run them unoptimised intrinsics.
        .target(name: "CGEMM", cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [.linkedLibrary("m")]),

        // Generated code (scripts/generate-protos; never edited by hand).
        .target(name: "ONNXFormat", dependencies: [swiftProtobuf], swiftSettings: swiftSettings),
        .target(
            name: "FulcrumProtocol",
            dependencies: [swiftProtobuf, grpcCore, grpcProtobuf],
            swiftSettings: swiftSettings
        ),

        // The model's schema: its configuration (config.pbtxt), tensors, data types and the
        // runtime's error type. No dependencies: the edges (frontend, balancer, CLI, load
        // generator) share these values with the worker without linking the runtime or OpenBLAS
        // (tests/integration/test_linkage.py checks the binaries).
        .target(name: "FulcrumSchema", swiftSettings: swiftSettings),

        // Compute: no networking below this line.
        .target(
            name: "FulcrumKernels",
            dependencies: ["CBLAS", "CVulkan", "CGEMM"],
            // GLSL sources of Shaders/SPIRV+Generated.swift (scripts/generate-shaders).
            exclude: [
                "Vulkan/Shaders/Activation.glsl", "Vulkan/Shaders/binary.comp", "Vulkan/Shaders/matmul.comp",
                "Vulkan/Shaders/matmul128.comp", "Vulkan/Shaders/matmulsplitk.comp",
                "Vulkan/Shaders/matmulreduce.comp", "Vulkan/Shaders/unary.comp",
                // Normalisation, softmax, reductions, clip (VulkanRecording+Normalization.swift).
                "Vulkan/Shaders/WorkgroupReduce.glsl", "Vulkan/Shaders/batchnorm.comp", "Vulkan/Shaders/clip.comp",
                "Vulkan/Shaders/layernorm.comp", "Vulkan/Shaders/reduce.comp", "Vulkan/Shaders/softmax.comp",
                // Data movement, conversions, comparisons, Where (VulkanRecording+Data.swift).
                "Vulkan/Shaders/compare.comp", "Vulkan/Shaders/convert.comp", "Vulkan/Shaders/copy.comp",
                "Vulkan/Shaders/gather.comp", "Vulkan/Shaders/Select.glsl", "Vulkan/Shaders/select.comp",
                "Vulkan/Shaders/select64.comp",
                // Convolution, pooling, HardSigmoid (VulkanRecording+Convolution.swift).
                "Vulkan/Shaders/conv2d.comp", "Vulkan/Shaders/im2col.comp", "Vulkan/Shaders/channelfill.comp",
                "Vulkan/Shaders/pool2d.comp", "Vulkan/Shaders/hardsigmoid.comp",
                // Pad, Resize, ConvTranspose (VulkanRecording+Resampling.swift).
                "Vulkan/Shaders/remap.comp", "Vulkan/Shaders/bilinear.comp", "Vulkan/Shaders/convtranspose.comp",
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FulcrumRuntime",
            dependencies: ["FulcrumSchema", "FulcrumKernels", "ONNXFormat", swiftProtobuf],
            swiftSettings: swiftSettings
        ),

        // Services.
        .target(
            name: "FulcrumService",
            dependencies: [
                "FulcrumProtocol", "FulcrumSchema", grpcCore, grpcHTTP2, grpcProtobuf, swiftProtobuf, logging, lifecycle, metrics, tracing,
                otel, .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                // ModelInfer served on raw HTTP/2 frames beside grpc-swift (GRPCEdgeServer).
                .product(name: "NIOHTTP2", package: "swift-nio-http2"), .product(name: "NIOHPACK", package: "swift-nio-http2"),
                // mTLS between the tiers (ClusterTLS), its certificate reloaded on SIGHUP.
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"), .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Prometheus text on /metrics for every service.
        .target(
            name: "FulcrumMetrics",
            dependencies: ["FulcrumService", hummingbird, metrics, prometheus, logging, lifecycle, .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FulcrumWorker",
            dependencies: [
                "FulcrumService", "FulcrumSchema", "FulcrumRuntime", "FulcrumKernels", "FulcrumProtocol", "FulcrumMetrics", tracing,
                grpcCore, grpcHTTP2, logging, metrics, lifecycle,
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FulcrumFrontend",
            dependencies: [
                "FulcrumService", "FulcrumSchema", "FulcrumProtocol", "FulcrumMetrics", hummingbird, tracing,
                grpcCore, grpcHTTP2, swiftProtobuf, logging, metrics, lifecycle,
                // HTTPS on the public port (--edge-tls-cert) and the cluster's mutual TLS to workers.
                .product(name: "HummingbirdTLS", package: "hummingbird"), .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // The frontend's own ModelInfer client to workers, on raw HTTP/2 frames (WorkerLink).
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"), .product(name: "NIOHPACK", package: "swift-nio-http2"),
                // The feature_lookup processor's PostgreSQL client (connection pool included).
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // The HTTP edge's read deadline sees Hummingbird's decoded request parts.
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"), .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FulcrumBalancer",
            dependencies: ["FulcrumService", "FulcrumProtocol", "FulcrumMetrics", grpcCore, logging, metrics, lifecycle],
            swiftSettings: swiftSettings
        ),
        // The Kubernetes scaler: the API server's scale subresource (docs/capacity.md).
        .target(
            name: "FulcrumKubernetes",
            dependencies: [
                "FulcrumBalancer", logging,
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FulcrumOperator",
            dependencies: [
                "FulcrumService", "FulcrumProtocol", "FulcrumBalancer", grpcCore, grpcHTTP2, swiftProtobuf,
                // `fulcrum certs` and `fulcrum up` issue the cluster's CA and certificates.
                .product(name: "X509", package: "swift-certificates"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        // Load generator (no HTTP server): docs/loadtesting.md.
        .target(
            name: "FulcrumLoad",
            dependencies: [
                "FulcrumService", "FulcrumProtocol", grpcCore, grpcHTTP2, swiftProtobuf,
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: swiftSettings
        ),

        // Flags, FULCRUM_* environment and --config files for the service executables.
        .target(name: "FulcrumCommandLine", dependencies: ["FulcrumService", argumentParser, logging], swiftSettings: swiftSettings),

        // Thin executables.
        .executableTarget(
            name: "fulcrum-worker",
            dependencies: ["FulcrumWorker", "FulcrumKernels", "FulcrumRuntime", "FulcrumService", "FulcrumMetrics", "FulcrumCommandLine", argumentParser, logging],
            swiftSettings: swiftSettings
        ),
        // The frontend's options and start-up, shared by fulcrum-frontend and custom frontends.
        .target(
            name: "FulcrumFrontendCommand",
            dependencies: ["FulcrumFrontend", "FulcrumService", "FulcrumMetrics", "FulcrumCommandLine", argumentParser, logging],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fulcrum-frontend",
            dependencies: ["FulcrumFrontendCommand", "FulcrumCommandLine", argumentParser],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fulcrum-balancer",
            dependencies: ["FulcrumBalancer", "FulcrumKubernetes", "FulcrumService", "FulcrumMetrics", "FulcrumCommandLine", argumentParser, logging],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fulcrum",
            dependencies: ["FulcrumOperator", "FulcrumService", "FulcrumLoad", "FulcrumCommandLine", argumentParser, logging],
            swiftSettings: swiftSettings
        ),
        // Fuzz targets for the decoders that see client bytes (scripts/fuzz, docs/security.md);
        // built normally it replays corpus files.
        .executableTarget(
            name: "fulcrum-fuzz", dependencies: ["FulcrumFrontend", "FulcrumService", "FulcrumSchema", "FulcrumRuntime", "FulcrumProtocol"],
            swiftSettings: swiftSettings),
        // Benchmark of the runtime alone (not a test): docs/runtime.md.
        .executableTarget(name: "fulcrum-bench", dependencies: ["FulcrumSchema", "FulcrumRuntime", "FulcrumKernels"], swiftSettings: swiftSettings),

        // Tests.
        .testTarget(name: "FulcrumKernelsTests", dependencies: ["FulcrumKernels"], swiftSettings: swiftSettings),
        .testTarget(name: "FulcrumVulkanTests", dependencies: ["FulcrumKernels"], swiftSettings: swiftSettings),
        .testTarget(name: "FulcrumCommandLineTests", dependencies: ["FulcrumCommandLine", argumentParser], swiftSettings: swiftSettings),
        .testTarget(name: "FulcrumSchemaTests", dependencies: ["FulcrumSchema"], swiftSettings: swiftSettings),
        .testTarget(
            name: "FulcrumRuntimeTests",
            dependencies: ["FulcrumSchema", "FulcrumRuntime", "ONNXFormat", swiftProtobuf],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FulcrumServiceTests",
            dependencies: [
                "FulcrumService", "FulcrumSchema", tracing, otel, logging, .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FulcrumFrontendTests",
            dependencies: [
                "FulcrumFrontend", "FulcrumService", "FulcrumSchema", "FulcrumProtocol", grpcCore, grpcHTTP2, logging,
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "FulcrumWorkerTests", dependencies: ["FulcrumWorker", "FulcrumSchema", "FulcrumRuntime"], swiftSettings: swiftSettings),
        .testTarget(name: "FulcrumBalancerTests", dependencies: ["FulcrumBalancer"], swiftSettings: swiftSettings),
        .testTarget(name: "FulcrumOperatorTests", dependencies: ["FulcrumOperator", .product(name: "X509", package: "swift-certificates")], swiftSettings: swiftSettings),
        .testTarget(
            name: "FulcrumLoadTests",
            dependencies: ["FulcrumLoad", .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOHTTP2", package: "swift-nio-http2")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FulcrumKubernetesTests",
            dependencies: [
                "FulcrumKubernetes",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
