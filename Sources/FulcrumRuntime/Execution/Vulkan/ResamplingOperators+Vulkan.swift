import FulcrumKernels
import FulcrumSchema

// Pad, Resize and ConvTranspose on a Vulkan device (see `DeviceOperator`). Pad and nearest
// Resize become one index table per axis (`VulkanRecording.remap`), linear Resize row and
// column tables (`VulkanRecording.resizeBilinear`), all computed here once per bound shape with
// the CPU kernels' rules (PadOperator, ResizeOperator: the same arithmetic, restated because
// those kernels compute their tables inside `makeKernel`).

extension DeviceValue {
    /// The type planning saw: with the contents when static (shape-like and scale inputs).
    var knownType: ValueType { host.map(ValueType.init(known:)) ?? ValueType(dataType: dataType, shape: shape) }
}

extension PadOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let (x, out) = (inputs[0]!, outputs[0])
        let types = inputs.map { $0?.knownType }
        guard let (begin, _) = try pads(types, rank: x.shape.count) else { throw deviceLacks("Pad with pads computed per batch") }
        var value = attributeValue
        if opset >= 11, let constant = optional(types, 2) {
            guard constant.dataType == .fp32, let reals = constant.reals, reals.count == 1 else { throw failure("constant_value must be one FP32 value") }
            value = Float(reals[0])
        }
        guard out.shape.count == x.shape.count else { throw failure("output rank \(out.shape.count) differs from the input's \(x.shape.count)") }
        let mode = mode
        var maps: [[Int]] = []
        for axis in x.shape.indices {
            let size = x.shape[axis]
            maps.append((0..<out.shape[axis]).map { o in
                var i = o - begin[axis]
                if i >= 0, i < size { return i }
                switch mode {
                case .constant: return -1
                case .edge: return size > 0 ? Swift.min(Swift.max(i, 0), size - 1) : -1
                case .reflect:
                    guard size >= 2 else { return size == 1 ? 0 : -1 }
                    let period = 2 * (size - 1)
                    i = ((i % period) + period) % period
                    return i < size ? i : period - i
                }
            })
        }
        guard out.elementCount > 0 else { return }
        try recorder.record { try $0.remap(x.buffer, inputShape: x.shape, maps: maps, constant: value, to: out.buffer) }
    }
}

extension ResizeOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let (x, out) = (inputs[0]!, outputs[0])
        guard x.shape.count == 4 else { throw failure("X has rank \(x.shape.count); Resize takes [N, C, H, W]") }
        guard let planned = try plan(inputs.map { $0?.knownType }, shape: x.shape) else {
            throw deviceLacks("Resize with scales or sizes computed per batch")
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (planned.out[2], planned.out[3])
        guard out.shape == [n, c, oh, ow], h >= 1, w >= 1 else { throw failure("output \(out.shape) does not follow from X \(x.shape)") }
        let (rows, columns) = sourceCoordinates(planned, height: h, width: w)
        switch mode {
        case .nearest:
            let maps = [Array(0..<n), Array(0..<c), rows.map { nearestIndex($0, h) }, columns.map { nearestIndex($0, w) }]
            try recorder.record { try $0.remap(x.buffer, inputShape: x.shape, maps: maps, to: out.buffer) }
        case .linear:
            let planes = try VulkanShapes.product([n, c], "Resize")
            let (r, k) = (rows.map { Self.linearTaps($0, h) }, columns.map { Self.linearTaps($0, w) })
            try recorder.record { try $0.resizeBilinear(x.buffer, planes: planes, height: h, width: w, rows: r, columns: k, to: out.buffer) }
        }
    }
}

extension ConvTransposeOperator: DeviceOperator {
    func record(inputs: [DeviceValue?], outputs: [DeviceValue], on recorder: DeviceRecorder) throws(RuntimeError) {
        let (x, w, y) = (inputs[0]!, inputs[1]!, outputs[0])
        guard x.shape.count == 4, w.shape.count == 4, y.shape.count == 4 else { throw failure("ConvTranspose takes 4-D X and W") }
        let window = Window2D(
            height: x.shape[2], width: x.shape[3], kernel: (w.shape[2], w.shape[3]), stride: (strides[0], strides[1]),
            dilation: (dilations[0], dilations[1]), pads: (pads[0], pads[1], pads[2], pads[3]),
            outputHeight: y.shape[2], outputWidth: y.shape[3])
        let shape = Convolution2D(channels: x.shape[1], outputChannels: y.shape[1], groups: groups, window: window)
        let bias = inputs.count > 2 ? inputs[2]?.buffer : nil
        let batch = x.shape[0]
        try recorder.record { try $0.convTranspose(shape, batch: batch, x: x.buffer, weights: w.buffer, bias: bias, y: y.buffer) }
    }
}
