import Foundation
import FulcrumKernels
@testable import FulcrumRuntime
import FulcrumSchema
import Testing

/// The runtime on the Vulkan backend against the CPU backend and onnxruntime: the example models
/// whole, and every operator fixture the device implements. In CI the device is Mesa's lavapipe
/// (forced unless `VK_DRIVER_FILES` is set), opened with the Khronos validation layer, which must
/// report nothing. Without any Vulkan device the suite is skipped with the reason.
@Suite("models on the Vulkan backend", .serialized, .enabled(if: VulkanPlacement.available, VulkanPlacement.skipReason))
struct VulkanModelTests {
    /// Whole-model tolerance: relative L2 against the CPU backend (matrix products and reductions: 1e-4).
    static let tolerance = 1e-4

    func load(_ name: String, placement: DevicePlacement, from path: String = Fixtures.examples.path) throws -> Model {
        let loads = try ModelRepository(path: path, placement: placement).load(name)
        try #require(loads.count == 1)
        return try loads[0].result.get()
    }

    @Test("example model on the device matches the CPU backend and onnxruntime", arguments: ["ranking_mlp", "dlrm", "transformer_encoder", "wide_mlp"])
    func exampleModel(name: String) throws {
        let opened = try VulkanPlacement.placement.openDefaultDevice()
        let device = try #require(opened)
        let onDevice = try load(name, placement: VulkanPlacement.placement)
        #expect(onDevice.backendName == "vulkan")
        let onCPU = try load(name, placement: .cpu)
        let gpu = try onDevice.makeInstance()
        let cpu = try onCPU.makeInstance()
        var inputs: [String: Tensor]
        var expected: [String: Tensor] = [:]
        if let fixture = try? Fixtures.expectations("models/\(name)-io") {
            (inputs, expected) = fixture
        } else {
            inputs = VulkanPlacement.randomInputs(for: onCPU, batch: 3, seed: 7)
        }
        for round in 0..<2 {  // the second run replays the recorded command buffer
            let results = try gpu.execute(inputs)
            let reference = try cpu.execute(inputs)
            #expect(Set(results.keys) == Set(reference.keys))
            for (output, want) in reference {
                if want.dataType == .fp32 {
                    let error = relativeL2(results[output], want)
                    #expect(error <= Self.tolerance, "\(name).\(output) round \(round): relative L2 \(error) against the CPU")
                    if round == 0, let truth = expected[output] {
                        let truthError = relativeL2(results[output], truth)
                        #expect(truthError <= Self.tolerance, "\(name).\(output): relative L2 \(truthError) against onnxruntime")
                    }
                } else {
                    #expect(results[output] == want, "\(name).\(output)")
                }
            }
            // New inputs through the same recording.
            inputs = VulkanPlacement.randomInputs(for: onCPU, batch: inputs.values.first?.shape.first ?? 1, seed: UInt64(round + 11))
        }
        // Several batch sizes: one recording each.
        for batch in [1, 5] {
            let batchInputs = VulkanPlacement.randomInputs(for: onCPU, batch: batch, seed: UInt64(batch))
            let results = try gpu.execute(batchInputs)
            let reference = try cpu.execute(batchInputs)
            for (output, want) in reference where want.dataType == .fp32 {
                let error = relativeL2(results[output], want)
                #expect(error <= Self.tolerance, "\(name).\(output) batch \(batch): relative L2 \(error)")
            }
        }
        VulkanPlacement.expectNoValidationMessages(device)
    }

    @Test("operator fixture on the device matches onnxruntime, or is refused naming the operator", arguments: Fixtures.operatorCases)
    func operatorCase(name: String) throws {
        let opened = try VulkanPlacement.placement.openDefaultDevice()
        let device = try #require(opened)
        let repo = try TemporaryRepository()
        try repo.add(model: "m", fixture: "ops/\(name).onnx")
        let loads = try ModelRepository(path: repo.root.path, placement: VulkanPlacement.placement).load("m")
        let model: Model
        switch loads[0].result {
        case .success(let loaded): model = loaded
        case .failure(let error):
            // Operators without a device kernel are refused at load, by name.
            #expect(error.code == .unsupportedOperator, "\(name): \(error)")
            #expect(!VulkanPlacement.expectedOnDevice(name), "\(name) should run on the device: \(error.message)")
            return
        }
        let (inputs, outputs) = try Fixtures.expectations("ops/\(name)")
        let instance = try model.makeInstance()
        let results: [String: Tensor]
        do {
            results = try instance.execute(inputs)
        } catch {
            // Type limits (INT64 arithmetic, say) show when the shape is bound.
            #expect(error.code == .unsupportedOperator, "\(name): \(error)")
            #expect(!VulkanPlacement.expectedOnDevice(name), "\(name) should run on the device: \(error.message)")
            return
        }
        for (output, expected) in outputs { expectClose(results[output], expected, tolerance: 1e-4, "\(name).\(output)") }
        VulkanPlacement.expectNoValidationMessages(device)
    }

    @Test("the discrete-GPU path (device-local buffers, staging copies up and down) gives the same answers", arguments: ["ranking_mlp", "transformer_encoder", "dlrm"])
    func stagingPath(name: String) throws {
        // lavapipe's memory is unified, so the tests above never stage; force it here.
        let staging = DevicePlacement(backend: .vulkan(device: 0), options: .init(validation: true, memory: .staging))
        let device = try #require(try staging.openDefaultDevice())
        let onDevice = try load(name, placement: staging).makeInstance()
        let onCPU = try load(name, placement: .cpu).makeInstance()
        for batch in [1, 4] {
            let inputs = VulkanPlacement.randomInputs(for: try load(name, placement: .cpu), batch: batch, seed: UInt64(40 + batch))
            let results = try onDevice.execute(inputs)
            for (output, want) in try onCPU.execute(inputs) where want.dataType == .fp32 {
                let error = relativeL2(results[output], want)
                #expect(error <= Self.tolerance, "\(name).\(output) batch \(batch) through staging: relative L2 \(error)")
            }
        }
        VulkanPlacement.expectNoValidationMessages(device)
    }

    @Test("a model with an operator the device lacks is refused at load, naming node and operator")
    func refusal() throws {
        let repo = try TemporaryRepository()
        try repo.add(model: "m", fixture: "ops/topk_opset11_largest.onnx")
        let loads = try ModelRepository(path: repo.root.path, placement: VulkanPlacement.placement).load("m")
        guard case .failure(let error) = loads[0].result else {
            Issue.record("TopK loaded on the device")
            return
        }
        #expect(error.matches(.unsupportedOperator, "TopK", "vulkan"), "\(error)")
    }

    @Test("KIND_CPU in a model's instance_group keeps it on the CPU of a Vulkan worker")
    func instanceGroupKind() throws {
        let repo = try TemporaryRepository()
        try repo.add(model: "m", fixture: "ops/topk_opset11_largest.onnx", config: "instance_group [ { kind: KIND_CPU } ]")
        let loads = try ModelRepository(path: repo.root.path, placement: VulkanPlacement.placement).load("m")
        let model = try loads[0].result.get()
        #expect(model.backendName == "cpu")
    }

    @Test("a Gather index out of range fails the request, and the next batch still runs")
    func gatherOutOfRange() throws {
        let model = try load("dlrm", placement: VulkanPlacement.placement)
        let instance = try model.makeInstance()
        var inputs = VulkanPlacement.randomInputs(for: model, batch: 2, seed: 3)
        let good = try instance.execute(inputs)
        #expect(!good.isEmpty)
        var sparse = inputs["sparse"]!
        sparse.data.withUnsafeMutableBytes { $0.storeBytes(of: Int64(1 << 40), toByteOffset: 0, as: Int64.self) }
        inputs["sparse"] = sparse
        #expect(throws: RuntimeError.self) { try instance.execute(inputs) }
        let again = try instance.execute(VulkanPlacement.randomInputs(for: model, batch: 2, seed: 3))
        #expect(again == good)
    }
}

/// The device the Vulkan model tests share.
enum VulkanPlacement {
    static let placement: DevicePlacement = {
        if getenv("VK_DRIVER_FILES") == nil, getenv("VK_ICD_FILENAMES") == nil {
            #if arch(x86_64)
            let path = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"
            #else
            let path = "/usr/share/vulkan/icd.d/lvp_icd.aarch64.json"
            #endif
            if FileManager.default.fileExists(atPath: path) { setenv("VK_DRIVER_FILES", path, 1) }
        }
        return DevicePlacement(backend: .vulkan(device: 0), options: .init(validation: true))
    }()

    static let opened: Result<VulkanDevice?, RuntimeError> = Result { () throws(RuntimeError) in try placement.openDefaultDevice() }

    static var available: Bool { (try? opened.get()) != nil }

    static var skipReason: Comment {
        switch opened {
        case .success: "Vulkan device available"
        case .failure(let error): "no Vulkan device: \(error.message)"
        }
    }

    static func expectNoValidationMessages(_ device: VulkanDevice, sourceLocation: SourceLocation = #_sourceLocation) {
        let messages = device.validationLog.messages
        #expect(messages.isEmpty, "validation layer: \(messages.prefix(3).joined(separator: " | "))", sourceLocation: sourceLocation)
    }

    /// Fixtures whose operators all have device kernels (the rest must be refused cleanly).
    static func expectedOnDevice(_ name: String) -> Bool {
        // TopK, ArgMax, Pow; INT64 arithmetic; MatMul whose batch dimensions broadcast partially;
        // the ai.onnx.ml operators.
        let hostOnly = ["topk", "argmax", "pow", "add_int64", "sub_int64", "mul_int64", "div_int64", "matmul_broadcast_batch", "tree_", "linear_", "scaler_", "normalizer_"]
        return !hostOnly.contains { name.contains($0) }
    }

    /// Seeded random inputs for every config input: FP32 in [-1, 1], integers in [0, 8) (valid
    /// ids for the example models' embeddings), attention masks of ones.
    static func randomInputs(for model: Model, batch: Int, seed: UInt64) -> [String: Tensor] {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var result: [String: Tensor] = [:]
        for input in model.configuration.inputs {
            let dims = input.dims.map { $0 < 0 ? 6 : $0 }
            let shape = (model.maxBatchSize > 0 ? [batch] : []) + dims
            let count = shape.reduce(1, *)
            switch input.dataType {
            case .fp32:
                let values = (0..<count).map { _ in Float(next() % 2_000_001) / 1_000_000 - 1 }
                result[input.name] = Tensor(dataType: .fp32, shape: shape, data: values.withUnsafeBytes { Array($0) })
            case .int64:
                let values: [Int64] = (0..<count).map { _ in input.name.contains("mask") ? 1 : Int64(next() % 8) }
                result[input.name] = Tensor(dataType: .int64, shape: shape, data: values.withUnsafeBytes { Array($0) })
            case .int32:
                let values: [Int32] = (0..<count).map { _ in Int32(next() % 8) }
                result[input.name] = Tensor(dataType: .int32, shape: shape, data: values.withUnsafeBytes { Array($0) })
            default:
                break
            }
        }
        return result
    }
}
