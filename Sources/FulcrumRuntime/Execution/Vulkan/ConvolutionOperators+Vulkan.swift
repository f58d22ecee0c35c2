import FulcrumKernels
import FulcrumSchema

// Convolution, pooling and HardSigmoid/HardSwish on a Vulkan device (see `DeviceOperator`): the
// same window resolution as the CPU kernels (`SpatialAttributes.resolve`), the device kernels of
// VulkanRecording+Convolution.swift. ConvTranspose, Resize and Pad have no device lowering yet and
// are refused at load by name (`DeviceConstants`).

extension ConvOperator: DeviceOperator {
    /// One-group convolutions: im2col into the plan's shared scratch, then one batched sgemm with
    /// the bias and the fused activation; grouped and depthwise ones (and any whose column
    /// matrix would pass `VulkanRecording.maximumColumnFloats`): the direct kernel.
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let (x, w, y) = (inputs[0]!, inputs[1]!, outputs[0])
        guard x.shape.count == 4, w.shape.count == 4 else { throw failure("Conv takes X [N, C, H, W] and W [M, C/group, kH, kW]") }
        let window = try spatial.resolve(height: x.shape[2], width: x.shape[3], kernel: (w.shape[2], w.shape[3]))
        let shape = Convolution2D(channels: x.shape[1], outputChannels: w.shape[0], groups: groups, window: window)
        let bias = inputs.count > 2 ? inputs[2]?.buffer : nil
        let batch = x.shape[0]
        var columns: VulkanBuffer?
        if let floats = VulkanRecording.im2colFloats(shape, batch: batch), floats > 0 {
            columns = try recorder.sharedScratch(words: floats)
        }
        let activation = activation
        try recorder.record {
            try $0.convolve(shape, batch: batch, x: x.buffer, weights: w.buffer, bias: bias, y: y.buffer, activation: activation, columns: columns)
        }
    }
}

extension PoolOperator: DeviceOperator {
    /// MaxPool and AveragePool: one invocation per output (`VulkanRecording.pool`); the global
    /// pools: a max or mean over each plane with the reduction kernel.
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let (x, y) = (inputs[0]!, outputs[0])
        guard x.shape.count == 4 else { throw failure("X has rank \(x.shape.count); 2-D pooling takes [N, C, H, W]") }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let planes = try VulkanShapes.product([n, c], "pooling")
        if let spatial, let kernel = spatial.kernel {
            let window = try spatial.resolve(height: h, width: w, kernel: (kernel[0], kernel[1]))
            let pooling = Pooling2D(kind: kind == .max ? .max : .average(countIncludePad: countIncludePad), window: window)
            try recorder.record { try $0.pool(pooling, planes: planes, x: x.buffer, y: y.buffer) }
        } else {
            let spatialCount = try VulkanShapes.product([h, w], "pooling")
            let op: ReductionOperator = kind == .globalMax ? .max : .mean
            try recorder.record { try $0.reduce(op, x.buffer, y.buffer, shape: [planes, spatialCount], axes: [1]) }
        }
    }
}

extension HardSigmoidOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let (x, y) = (inputs[0]!, outputs[0])
        let (alpha, beta, swish) = (alpha, beta, swish)
        try recorder.record { try $0.hardSigmoid(x.buffer, y.buffer, count: y.elementCount, alpha: alpha, beta: beta, swish: swish) }
    }
}

/// Checked size arithmetic for device lowerings.
enum VulkanShapes {
    /// The product of `sizes`, refusing negative sizes and overflow with `invalidInput`.
    static func product(_ sizes: [Int], _ what: String) throws(RuntimeError) -> Int {
        var result = 1
        for size in sizes {
            let (next, overflow) = result.multipliedReportingOverflow(by: size)
            guard size >= 0, !overflow else { throw RuntimeError(code: .invalidInput, message: "\(what): sizes \(sizes) overflow") }
            result = next
        }
        return result
    }
}
