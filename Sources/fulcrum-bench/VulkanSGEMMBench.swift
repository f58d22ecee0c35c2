import Foundation
import FulcrumKernels

/// `fulcrum-bench vulkan-sgemm`: GFLOP/s of the Vulkan sgemm kernels on one device. A benchmark,
/// not a test: it prints JSON lines, first the device, then one per shape and variant.
///
///     fulcrum-bench vulkan-sgemm [--shapes 4096x4096x4096,512x256x1024] [--variant automatic,tile64,tile128,splitk]
///                   [--iterations 20] [--repeats 3] [--batch 1] [--transpose NN|NT|TN|TT] [--device N|NAME]
///
/// For each shape (`MxNxK`) it fills A and B with uniform random values in [-1, 1) on the host
/// and uploads them once, records `iterations` sgemm dispatches (`batch` products each, beta 0,
/// barriers between them) into one `VulkanRecording`, submits it once to warm up, then times
/// `repeats` submissions with the wall clock and reports the fastest: `ms_per_gemm` is that
/// submission's time over `iterations` (one "gemm" is all `batch` products), `gflops` counts
/// 2·m·n·k·batch flops per gemm. Submission and barrier gaps are included, so small shapes read
/// lower than a kernel-only timer would. `max_rel_error` compares 64 sampled entries of C
/// (batch 0) with a Double dot product on the host, relative to the largest |value| sampled.
/// Without `--device` it opens the first discrete GPU, else lavapipe; `VK_DRIVER_FILES` picks
/// the driver as usual. Works on lavapipe (use small shapes there).
enum VulkanSGEMMBench {
    struct Options {
        var shapes: [(m: Int, n: Int, k: Int)] = [(4096, 4096, 4096), (512, 256, 1024)]
        var variants: [SGEMMVariant] = [.automatic]
        var iterations = 20
        var repeats = 3
        var batch = 1
        var transposeA = false
        var transposeB = false
        var selection = VulkanDevice.Selection.automatic
    }

    static let usage = """
        usage: fulcrum-bench vulkan-sgemm [--shapes MxNxK,...] [--variant automatic|tile64|tile128|splitk[,...]] \
        [--iterations 20] [--repeats 3] [--batch 1] [--transpose NN|NT|TN|TT] [--device N|NAME]
        """

    /// The options, or nil (print `usage`) when an argument is unknown or malformed.
    static func parse(_ arguments: [String]) -> Options? {
        var options = Options()
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            guard let value = iterator.next() else { return nil }
            switch argument {
            case "--shapes":
                var shapes: [(m: Int, n: Int, k: Int)] = []
                for item in value.split(separator: ",") {
                    let sizes = item.split(separator: "x").compactMap { Int($0) }
                    guard sizes.count == 3, sizes.allSatisfy({ $0 > 0 }) else { return nil }
                    shapes.append((sizes[0], sizes[1], sizes[2]))
                }
                guard !shapes.isEmpty else { return nil }
                options.shapes = shapes
            case "--variant":
                let variants = value.split(separator: ",").map { SGEMMVariant(name: String($0)) }
                guard !variants.isEmpty, variants.allSatisfy({ $0 != nil }) else { return nil }
                options.variants = variants.compactMap { $0 }
            case "--iterations":
                guard let count = Int(value), count > 0 else { return nil }
                options.iterations = count
            case "--repeats":
                guard let count = Int(value), count > 0 else { return nil }
                options.repeats = count
            case "--batch":
                guard let count = Int(value), count > 0 else { return nil }
                options.batch = count
            case "--transpose":
                let flags = Array(value.uppercased())
                guard flags.count == 2, flags.allSatisfy({ $0 == "N" || $0 == "T" }) else { return nil }
                options.transposeA = flags[0] == "T"
                options.transposeB = flags[1] == "T"
            case "--device":
                options.selection = Int(value).map { .index($0) } ?? .name(value)
            default:
                return nil
            }
        }
        return options
    }

    /// Runs the benchmark; returns the process exit status (2: bad arguments, 1: a Vulkan error,
    /// printed on standard error).
    static func run(_ arguments: [String]) -> Int32 {
        guard let options = parse(arguments) else {
            FileHandle.standardError.write(Data((usage + "\n").utf8))
            return 2
        }
        do {
            try measure(options)
            return 0
        } catch {
            FileHandle.standardError.write(Data("fulcrum-bench vulkan-sgemm: \(error)\n".utf8))
            return 1
        }
    }

    static func measure(_ options: Options) throws {
        let device = try VulkanDevice(options: .init(selection: options.selection))
        let info = device.info
        emit([
            "device": info.name, "vendor": info.vendor, "kind": info.kind, "driver_version": info.driverVersion,
            "driver": info.driverInfo, "vulkan": info.apiVersion,
        ])
        let transpose = (options.transposeA ? "T" : "N") + (options.transposeB ? "T" : "N")
        for shape in options.shapes {
            let (m, n, k) = shape
            let (rowsA, colsA) = options.transposeA ? (k, m) : (m, k)
            let (rowsB, colsB) = options.transposeB ? (n, k) : (k, n)
            let batch = options.batch
            let a = try VulkanBuffer(device: device, count: batch * m * k)
            let b = try VulkanBuffer(device: device, count: batch * k * n)
            let c = try VulkanBuffer(device: device, count: batch * m * n)
            var generator = SystemRandomNumberGenerator()
            let hostA = (0..<min(a.count, m * k)).map { _ in Float.random(in: -1..<1, using: &generator) }
            let hostB = (0..<min(b.count, k * n)).map { _ in Float.random(in: -1..<1, using: &generator) }
            // Every batch gets the same values (one upload per matrix, repeated).
            try a.upload(Array([[Float]](repeating: hostA, count: batch).joined()))
            try b.upload(Array([[Float]](repeating: hostB, count: batch).joined()))
            for variant in options.variants {
                let recording = try VulkanRecording(device: device)
                for _ in 0..<options.iterations {
                    try recording.sgemm(
                        transposeA: options.transposeA, transposeB: options.transposeB, m: m, n: n, k: k,
                        a: a, lda: colsA, b: b, ldb: colsB, c: c, ldc: n,
                        batch: batch, strideA: rowsA * colsA, strideB: rowsB * colsB, strideC: m * n, variant: variant)
                }
                try recording.end()
                try recording.submit()  // warm-up: pipeline creation, clocks, caches
                var best = Double.infinity
                for _ in 0..<options.repeats {
                    let start = DispatchTime.now().uptimeNanoseconds
                    try recording.submit()
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
                let perGemm = best / Double(options.iterations)
                let flops = 2 * Double(m) * Double(n) * Double(k) * Double(batch)
                let error = sampledError(
                    c: try c.download(count: m * n), a: hostA, b: hostB, m: m, n: n, k: k,
                    transposeA: options.transposeA, transposeB: options.transposeB)
                emit([
                    "m": m, "n": n, "k": k, "batch": batch, "transpose": transpose, "variant": variant.description,
                    "resolved": variant.resolved(m: m, n: n, batch: batch).description,
                    "gflops": (flops / perGemm / 1e9 * 10).rounded() / 10, "ms_per_gemm": (perGemm * 1e6).rounded() / 1e3,
                    "iterations": options.iterations, "max_rel_error": Double(String(format: "%.2e", error)) ?? error,
                    "device": info.name,
                ])
            }
        }
    }

    /// max |C − reference| / max |reference| over 64 sampled entries (C row-major m × n, ld n).
    static func sampledError(
        c: [Float], a: [Float], b: [Float], m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool
    ) -> Double {
        var generator = SystemRandomNumberGenerator()
        var worst = 0.0
        var scale = 0.0
        for _ in 0..<64 {
            let row = Int.random(in: 0..<m, using: &generator)
            let column = Int.random(in: 0..<n, using: &generator)
            var sum = 0.0
            for p in 0..<k {
                let x = transposeA ? a[p * m + row] : a[row * k + p]
                let y = transposeB ? b[column * k + p] : b[p * n + column]
                sum += Double(x) * Double(y)
            }
            worst = max(worst, abs(Double(c[row * n + column]) - sum))
            scale = max(scale, abs(sum))
        }
        return scale == 0 ? worst : worst / scale
    }

    /// One JSON object per line, keys sorted.
    static func emit(_ object: [String: Any]) {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        FileHandle.standardOutput.write(data + Data("\n".utf8))  // unbuffered: lines appear as shapes finish
    }
}
