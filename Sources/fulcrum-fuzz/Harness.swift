import Foundation
import FulcrumFrontend
import FulcrumProtocol
import FulcrumRuntime
import FulcrumSchema
import FulcrumService

/// Fuzz targets for every decoder and validator that sees bytes from outside (docs/security.md):
///
/// - `infer`: a gRPC ModelInfer body (prefix + message) as the edge decodes it, then the
///   validator against three signatures and, when valid, the worker's tensor decoding;
/// - `json`: an HTTP/REST infer body (its first byte picks the Inference-Header-Content-Length),
///   then the same validation and decoding;
/// - `config`: a config.pbtxt;
/// - `onnx`: an ONNX model, decoded and planned;
/// - `plog`: a prediction log file as `fulcrum log show` and `fulcrum replay` read it (records,
///   their tensors as JSON, and each logged answer compared with itself as replay would).
///
/// Built with `-sanitize=fuzzer` (scripts/fuzz) the harness is a libFuzzer binary whose target
/// is `FULCRUM_FUZZ_TARGET`; built normally it replays files: `fulcrum-fuzz TARGET FILE...`
/// (the seed corpus and every crash found, in `fuzz/`, run this way in the unit tests).
enum Harness {
    static let targets = ["infer", "json", "config", "onnx", "plog"]

    static let signatures: [ModelSignature] = [
        ModelSignature(
            name: "m", version: "1", platform: "onnxruntime_onnx", maxBatchSize: 8,
            inputs: [.init(name: "INPUT0", dataType: .int32, dims: [16]), .init(name: "INPUT1", dataType: .fp32, dims: [-1])],
            outputs: [.init(name: "OUTPUT0", dataType: .int32, dims: [16])]),
        ModelSignature(
            name: "m", version: "1", platform: "onnxruntime_onnx", maxBatchSize: 0,
            inputs: [.init(name: "input_ids", dataType: .int64, dims: [-1, -1])],
            outputs: [.init(name: "y", dataType: .fp32, dims: [-1])]),
        ModelSignature(
            name: "m", version: "1", platform: "onnxruntime_onnx", maxBatchSize: 4,
            inputs: [.init(name: "text", dataType: .bytes, dims: [1])],
            outputs: [.init(name: "y", dataType: .bytes, dims: [1])]),
    ]

    /// Runs one input through `target`. Refusals are the expected outcome; only a crash (or a
    /// sanitizer report) is a finding.
    static func run(_ target: String, _ bytes: [UInt8]) {
        switch target {
        case "infer":
            if let request = ServiceFuzzing.edgeRequest(bytes, maxMessageBytes: 1 << 20) { validate(request) }
        case "json":
            guard let first = bytes.first else { return }
            let body = Array(bytes.dropFirst())
            let headerLength: Int? = first == 0xFF ? nil : min(Int(first) * 4, body.count)
            if let request = FrontendFuzzing.restRequest(body, headerLength: headerLength) { validate(request) }
        case "config":
            if let configuration = try? ModelConfiguration.parse(text: String(decoding: bytes, as: UTF8.self), file: "fuzz/config.pbtxt") {
                FrontendFuzzing.pipeline(configuration)
            }
        case "onnx":
            try? RuntimeFuzzing.planONNX(Data(bytes))
        case "plog":
            var reader = PredictionLogFormat.Reader(bytes)
            while let record = try? reader.next() {
                _ = try? JSONSerialization.data(withJSONObject: record.jsonObject)
                _ = AnswerComparison(served: record.response, shadow: record.response)
            }
        default:
            fatalError("unknown fuzz target '\(target)' (targets: \(targets.joined(separator: ", ")))")
        }
    }

    private static func validate(_ request: Inference_ModelInferRequest) {
        for signature in signatures {
            if (try? InferRequestValidator.validate(request, against: signature)) != nil {
                _ = try? TensorCodec.decodeInputs(request)
            }
        }
    }
}

#if FULCRUM_FUZZ
    private let fuzzTarget = ProcessInfo.processInfo.environment["FULCRUM_FUZZ_TARGET"] ?? "infer"

    /// libFuzzer's driver (in the runtime `-sanitize=fuzzer` links): SwiftPM names this
    /// executable's entry point itself, so the harness starts the driver from `main`.
    @_silgen_name("LLVMFuzzerRunDriver")
    private func runDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    /// The entry point libFuzzer's runtime expects.
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        Harness.run(fuzzTarget, size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }

    @main
    struct Fuzz {
        static func main() {
            guard Harness.targets.contains(fuzzTarget) else {
                FileHandle.standardError.write(Data("FULCRUM_FUZZ_TARGET: '\(fuzzTarget)' is not one of \(Harness.targets.joined(separator: ", "))\n".utf8))
                exit(2)
            }
            var argc = CommandLine.argc
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
            exit(runDriver(&argc, &argv, fuzzOne))
        }
    }
#else
    @main
    struct Replay {
        static func main() {
            let arguments = Array(CommandLine.arguments.dropFirst())
            guard let target = arguments.first, Harness.targets.contains(target), arguments.count >= 2 else {
                FileHandle.standardError.write(Data("usage: fulcrum-fuzz {\(Harness.targets.joined(separator: "|"))} FILE|DIRECTORY...\n".utf8))
                exit(2)
            }
            var count = 0
            for path in arguments.dropFirst() {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                    FileHandle.standardError.write(Data("fulcrum-fuzz: no such file '\(path)'\n".utf8))
                    exit(2)
                }
                let files = isDirectory.boolValue
                    ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
                    : [path]
                for file in files {
                    guard let data = FileManager.default.contents(atPath: file) else { continue }
                    Harness.run(target, Array(data))
                    count += 1
                }
            }
            print("fulcrum-fuzz: \(target): \(count) inputs replayed, none crashed")
        }
    }
#endif
