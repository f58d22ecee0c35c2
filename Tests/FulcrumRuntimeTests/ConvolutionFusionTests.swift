@testable import FulcrumRuntime
import Testing

/// Conv → BatchNormalization → Relu (or HardSwish) loads as one node (weights folded at load);
/// the conformance suite checks the folded nodes' outputs against onnxruntime
/// (Fixtures/ops/conv_bn_relu, conv_dw_bn_hardswish).
@Suite("convolution fusion")
struct ConvolutionFusionTests {
    @Test func batchNormalizationAndTheActivationFoldIntoTheConvolution() throws {
        let repo = try TemporaryRepository()
        try repo.add(model: "m", fixture: "ops/conv_bn_relu.onnx")
        let plan = try repo.loadOne("m").get().plan
        #expect(plan.nodes.map(\.opType) == ["Conv+BatchNormalization+Relu"], "\(plan.fusions)")
        let other = try TemporaryRepository()
        try other.add(model: "m", fixture: "ops/conv_relu_maxpool.onnx")
        #expect(try other.loadOne("m").get().plan.nodes.map(\.opType) == ["Conv+Relu", "MaxPool"])
        // HardSwish (MobileNetV3) folds into a depthwise convolution's loop too.
        let swish = try TemporaryRepository()
        try swish.add(model: "m", fixture: "ops/conv_dw_bn_hardswish.onnx")
        #expect(try swish.loadOne("m").get().plan.nodes.map(\.opType) == ["Conv+BatchNormalization+HardSwish"])
    }
}
