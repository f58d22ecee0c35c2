import Foundation
import FulcrumKernels
import FulcrumRuntime
import FulcrumSchema

/// `fulcrum-bench`: times the runtime alone, in process, against onnxruntime on the same model,
/// batch sizes and thread counts, and measures OpenBLAS's sgemm peak in the same run. A
/// benchmark, not a test: it prints a Markdown report (and writes it with `--report`).
///
///     fulcrum-bench ranking_mlp --batch 1,8,64 --threads 1,2 [--repository examples/models]
///                   [--seq 128] [--seconds 2] [--python .venv/bin/python] [--report FILE]
///
/// Inputs follow loadtests/runtime_bench.py's rule (FP32 normal; INT64 "mask" inputs 1, other
/// INT64 in 0..99; variable dims after the batch take --seq). The OpenBLAS kernels are chosen
/// from the CPU's features as the worker chooses them (`--cpu-kernels`, `CPUKernelSelection`).
///
///     fulcrum-bench vulkan-sgemm [--shapes 4096x4096x4096] [--variant automatic|tile64|tile128|splitk] ...
///
/// times the Vulkan sgemm kernels instead (`VulkanSGEMMBench`).
@main
struct Bench {
    struct Options {
        var model = ""
        var repository = "examples/models"
        var batches = [1, 8, 64]
        var threads = [1, 2]
        var sequence = 128
        var seconds = 2.0
        var python = ".venv/bin/python"
        var script = "loadtests/runtime_bench.py"
        var report: String?
        var onnxruntime = true
        /// `nil`: the CPU backend; else the Vulkan device index.
        var vulkanDevice: Int?
        var cpuKernels = CPUKernelRequest.automatic
        var microkernels = Microkernels.detected
    }

    static func parse(_ arguments: [String]) -> Options? {
        var options = Options()
        var iterator = arguments.makeIterator()
        func list(_ text: String?) -> [Int] { (text ?? "").split(separator: ",").compactMap { Int($0) } }
        while let argument = iterator.next() {
            switch argument {
            case "--repository": options.repository = iterator.next() ?? options.repository
            case "--batch": options.batches = list(iterator.next())
            case "--threads": options.threads = list(iterator.next())
            case "--seq": options.sequence = Int(iterator.next() ?? "") ?? options.sequence
            case "--seconds": options.seconds = Double(iterator.next() ?? "") ?? options.seconds
            case "--python": options.python = iterator.next() ?? options.python
            case "--report": options.report = iterator.next()
            case "--no-onnxruntime": options.onnxruntime = false
            case "--backend":
                switch iterator.next() {
                case "cpu": options.vulkanDevice = nil
                case "vulkan": options.vulkanDevice = options.vulkanDevice ?? 0
                default: return nil
                }
            case "--device": options.vulkanDevice = Int(iterator.next() ?? "") ?? 0
            case "--cpu-kernels":
                guard let request = iterator.next().flatMap(CPUKernelRequest.init(parsing:)) else { return nil }
                options.cpuKernels = request
            case "--microkernels":
                guard let set = iterator.next().flatMap(Microkernels.init(option:)) else { return nil }
                options.microkernels = set
            case "-h", "--help": return nil
            default:
                if argument.hasPrefix("-") || !options.model.isEmpty { return nil }
                options.model = argument
            }
        }
        return options.model.isEmpty || options.batches.isEmpty || options.threads.isEmpty ? nil : options
    }

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "vulkan-sgemm" {
            exit(VulkanSGEMMBench.run(Array(arguments.dropFirst())))
        }
        guard let options = parse(Array(CommandLine.arguments.dropFirst())) else {
            print("usage: fulcrum-bench MODEL [--repository DIR] [--batch 1,8,64] [--threads 1,2] [--seq 128] [--seconds 2] [--python PATH] [--report FILE] [--no-onnxruntime] [--backend cpu|vulkan] [--device N] [--cpu-kernels auto|openblas|CORE] [--microkernels auto|avx512|avx2|off]")
            print("       fulcrum-bench vulkan-sgemm --help")
            exit(2)
        }
        // A tool says what is wrong and exits 1; it does not trap.
        do {
            var kernels = try CPUKernelSelection.establish(options.cpuKernels)
            Microkernels.select(options.microkernels)
            kernels.microkernels = Microkernels.current
            try run(options, kernels: kernels)
        } catch {
            FileHandle.standardError.write(Data("fulcrum-bench: \((error as? RuntimeError)?.message ?? "\(error)")\n".utf8))
            exit(1)
        }
    }

    static func run(_ options: Options, kernels: CPUKernelChoice) throws {
        let placement = options.vulkanDevice.map { DevicePlacement(backend: .vulkan(device: $0)) } ?? .cpu
        let device = try placement.openDefaultDevice()
        let loads = try ModelRepository(path: options.repository, placement: placement).load(options.model)
        guard let load = loads.last else { throw RuntimeError(code: .notFound, message: "no version of \(options.model)") }
        let model = try load.result.get()
        if model.maxBatchSize > 0, let batch = options.batches.first(where: { !(1...model.maxBatchSize).contains($0) }) {
            throw RuntimeError(code: .invalidInput, message: "--batch \(batch): \(options.model) accepts batches of 1...\(model.maxBatchSize) (max_batch_size in its config.pbtxt)")
        }
        let instance = try model.makeInstance()
        var lines: [String] = []
        func emit(_ line: String = "") {
            print(line)
            lines.append(line)
        }
        let command = "fulcrum-bench " + CommandLine.arguments.dropFirst().joined(separator: " ")
        emit("# Runtime benchmark: \(options.model)")
        emit()
        emit("Command: `\(kernels.operatorCore.map { "OPENBLAS_CORETYPE=\($0) " } ?? "")\(command)`")
        emit()
        if let device { emit("Backend: vulkan on \(device.info.description)\n") }
        emit("CPU kernels: \(kernels), CPU: \(kernels.features?.modelName ?? "unknown"), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        emit()
        // On a device, every batch's outputs are also checked against the CPU backend's.
        let cpuInstance = try device == nil ? nil : ModelRepository(path: options.repository).load(options.model).last?.result.get().makeInstance()
        emit("| threads | batch | Fulcrum samples/s | Fulcrum ms/batch | onnxruntime samples/s | ratio | Fulcrum GFLOP/s | sgemm peak GFLOP/s |\(cpuInstance == nil ? "" : " rel. L2 vs CPU |")")
        emit("|---:|---:|---:|---:|---:|---:|---:|---:|\(cpuInstance == nil ? "" : "---:|")")
        for threads in options.threads {
            BLASThreading.setThreadCount(threads)
            let peak = sgemmPeak()
            let filename = model.configuration.defaultModelFilename.isEmpty ? "model.onnx" : model.configuration.defaultModelFilename
            let path = "\(options.repository)/\(options.model)/\(load.version)/\(filename)"
            let reference = options.onnxruntime ? onnxruntime(options, threads: threads, modelPath: path) : [:]
            for batch in options.batches {
                let inputs = makeInputs(model, batch: batch, sequence: options.sequence)
                for _ in 0..<10 { _ = try instance.execute(inputs) }
                var runs = 0
                let start = DispatchTime.now().uptimeNanoseconds
                var elapsed = 0.0
                repeat {
                    _ = try instance.execute(inputs)
                    runs += 1
                    elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                } while elapsed < options.seconds || runs < 5
                let samples = Double(runs * batch) / elapsed
                let flops = matmulFlops(model.name, batch: batch, sequence: options.sequence)
                let gflops = flops.map { String(format: "%.1f", $0 * Double(runs) / elapsed / 1e9) } ?? "–"
                let ort = reference[batch]
                var check = ""
                if let cpuInstance {
                    let expected = try cpuInstance.execute(inputs)
                    let actual = try instance.execute(inputs)
                    let worst = expected.compactMap { name, tensor in actual[name].map { relativeL2($0, tensor) } }.max() ?? 0
                    check = String(format: " %.1e |", worst)
                }
                emit("| \(threads) | \(batch) | \(format(samples)) | \(String(format: "%.3f", elapsed / Double(runs) * 1000)) | \(ort.map(format) ?? "–") | \(ort.map { String(format: "%.2f×", samples / $0) } ?? "–") | \(gflops) | \(String(format: "%.1f", peak)) |\(check)")
            }
        }
        if let report = options.report {
            try (lines.joined(separator: "\n") + "\n").write(toFile: report, atomically: true, encoding: .utf8)
        }
    }

    /// ‖a − b‖₂ / ‖b‖₂ over FP32 tensors (0 for other types when equal, ∞ when not).
    static func relativeL2(_ a: Tensor, _ b: Tensor) -> Double {
        guard a.dataType == .fp32, b.dataType == .fp32, a.shape == b.shape else { return a == b ? 0 : .infinity }
        var difference = 0.0
        var norm = 0.0
        for (x, y) in zip(a.scalars(as: Float.self), b.scalars(as: Float.self)) {
            difference += Double(x - y) * Double(x - y)
            norm += Double(y) * Double(y)
        }
        return norm == 0 ? difference.squareRoot() : (difference / norm).squareRoot()
    }

    static func format(_ value: Double) -> String {
        value >= 1000 ? String(format: "%.0f", value) : String(format: "%.1f", value)
    }

    /// Inputs for one batch by the documented rule.
    static func makeInputs(_ model: Model, batch: Int, sequence: Int) -> [String: Tensor] {
        var generator = SystemRandomNumberGenerator()
        var inputs: [String: Tensor] = [:]
        for input in model.configuration.inputs {
            let shape = (model.maxBatchSize > 0 ? [batch] : []) + input.dims.map { $0 < 0 ? sequence : $0 }
            let count = shape.reduce(1, *)
            switch input.dataType {
            case .int64:
                let values: [Int64] = input.name.contains("mask")
                    ? [Int64](repeating: 1, count: count) : (0..<count).map { _ in Int64.random(in: 0..<100, using: &generator) }
                inputs[input.name] = Tensor(shape: shape, scalars: values)
            case .int32:
                inputs[input.name] = Tensor(shape: shape, scalars: (0..<count).map { _ in Int32.random(in: 0..<100, using: &generator) })
            default:
                inputs[input.name] = Tensor(shape: shape, scalars: (0..<count).map { _ in Float.random(in: -2...2, using: &generator) })
            }
        }
        return inputs
    }

    /// Matrix-product flops per batch for the example models (for GFLOP/s against the peak).
    static func matmulFlops(_ name: String, batch: Int, sequence: Int) -> Double? {
        let b = Double(batch)
        switch name {
        case "ranking_mlp": return 2 * b * (256 * 512 + 512 * 256 + 256)
        case "dlrm": return 2 * b * (13 * 64 + 64 * 16 + 5 * 5 * 16 + 26 * 64 + 64 * 32 + 32)
        case "transformer_encoder":
            let tokens = b * Double(sequence)
            let dense = 2 * tokens * (4 * 128 * 128 + 2 * 128 * 512)
            let attention = 2 * 2 * tokens * Double(sequence) * 128
            return 2 * (dense + attention)
        default: return nil
        }
    }

    /// OpenBLAS sgemm GFLOP/s on 1024 × 1024 × 1024 at the current thread count (best of 5).
    static func sgemmPeak() -> Double {
        let n = 1024
        let a = [Float](repeating: 0.5, count: n * n)
        let b = [Float](repeating: 0.25, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        let backend = CPUBackend()
        var best = Double.infinity
        for _ in 0..<6 {
            let start = DispatchTime.now().uptimeNanoseconds
            backend.sgemm(transposeA: false, transposeB: false, m: n, n: n, k: n, alpha: 1, a: a, lda: n, b: b, ldb: n, beta: 0, c: &c, ldc: n)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }

    /// Runs loadtests/runtime_bench.py with the same batches and threads; samples/s per batch.
    static func onnxruntime(_ options: Options, threads: Int, modelPath: String) -> [Int: Double] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: options.python)
        process.arguments = [
            options.script, modelPath, "--batch", options.batches.map(String.init).joined(separator: ","),
            "--threads", String(threads), "--seq", String(options.sequence), "--seconds", String(options.seconds),
        ]
        let pipe = Pipe()
        process.standardOutput = pipe
        do {
            try process.run()
        } catch {
            FileHandle.standardError.write(Data("cannot run \(options.python) \(options.script): \(error)\n".utf8))
            return [:]
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var result: [Int: Double] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let batch = object["batch"] as? Int, let samples = object["samples_per_s"] as? Double
            else { continue }
            result[batch] = samples
        }
        return result
    }
}
