import Foundation
import FulcrumRuntime
import Testing

/// Every operator and opset variant against onnxruntime (Fixtures/ops, written by
/// scripts/make-runtime-fixtures.py): broadcasting corners, odd sizes, empty and size-1
/// dimensions, and the folded and fused patterns.
@Suite("operators against onnxruntime")
struct OperatorConformanceTests {
    @Test("operator case matches onnxruntime", arguments: Fixtures.operatorCases)
    func operatorCase(name: String) throws {
        let repo = try TemporaryRepository()
        try repo.add(model: "m", fixture: "ops/\(name).onnx")
        let model = try repo.loadOne("m").get()
        let (inputs, outputs) = try Fixtures.expectations("ops/\(name)")
        let instance = try model.makeInstance()
        for _ in 0..<2 {  // the second run reuses the bound plan and its shared memory
            let results = try instance.execute(inputs)
            #expect(Set(results.keys) == Set(outputs.keys))
            for (output, expected) in outputs { expectClose(results[output], expected, "\(name).\(output)") }
        }
    }

    @Test("there is a case for every operator the CPU backend claims")
    func coverage() {
        let cases = Fixtures.operatorCases.joined(separator: " ")
        let names: [String: String] = [
            "LayerNormalization": "layernorm", "BatchNormalization": "batchnorm", "ConstantOfShape": "constant_of_shape",
            "LogSoftmax": "logsoftmax", "LeakyRelu": "leaky_relu", "GlobalAveragePool": "global_average_pool",
            "GlobalMaxPool": "global_max_pool",
        ]
        for op in ["Abs", "Add", "ArgMax", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "ConstantOfShape",
                   "Conv", "ConvTranspose", "Div", "Equal", "Erf", "Exp", "Expand", "Flatten", "Gather", "Gelu", "Gemm", "GlobalAveragePool",
                   "GlobalMaxPool", "Greater", "HardSigmoid", "HardSwish",
                   "LayerNormalization", "LeakyRelu", "Less", "Log", "LogSoftmax", "MatMul", "MaxPool", "Mul", "Neg", "Pad", "Pow",
                   "ReduceMax", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Resize", "Shape", "Sigmoid", "Slice", "Softmax",
                   "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "TopK", "Transpose", "Unsqueeze", "Where"] {
            let key = names[op] ?? op.lowercased()
            #expect(cases.contains(key), "no fixture for \(op)")
        }
    }
}
