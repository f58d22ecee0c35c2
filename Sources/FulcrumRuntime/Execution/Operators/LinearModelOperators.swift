import FulcrumKernels
import FulcrumSchema

/// Reads element `i` of an FP32/FP64/INT32/INT64 tensor as onnxruntime's `static_cast<float>`.
private func floatReader(_ x: BoundValue) -> (Int) -> Float {
    switch x.dataType {
    case .fp64: let p = x.pointer.assumingMemoryBound(to: Double.self); return { Float(p[$0]) }
    case .int32: let p = x.int32s(); return { Float(p[$0]) }
    case .int64: let p = x.int64s(); return { Float(p[$0]) }
    default: let p = x.floats(); return { p[$0] }
    }
}

/// `[N, F]` or `[F]` → (rows, features); rank checked in `inferTypes`.
private func rowsAndFeatures(_ shape: [Int]) -> (Int, Int) {
    shape.count == 1 ? (1, shape[0]) : (shape[0], shape[1])
}

private let numericInputs = "FP32, FP64, INT32, INT64"

private func checkMatrix(_ op: some Operator, _ x: ValueType) throws(RuntimeError) {
    guard [.fp32, .fp64, .int32, .int64].contains(x.dataType) else { throw op.unsupported(x.dataType, numericInputs) }
    if let shape = x.shape, shape.count != 1, shape.count != 2 {
        throw op.failure("X has rank \(shape.count); this operator takes [N, features] or [features]")
    }
}

/// `X · coefficientsᵀ + intercepts` into `y` (`rows × targets`), by sgemm on FP32 (onnxruntime
/// computes these models with its GEMM on FP32, other input types cast first).
private func linearScores(
    _ x: BoundValue, coefficients: [Float], intercepts: [Float]?, targets: Int, scratch: TensorBuffer?,
    y: UnsafeMutablePointer<Float>, backend: CPUBackend
) {
    let (rows, features) = rowsAndFeatures(x.shape)
    let input: UnsafePointer<Float>
    if let scratch {
        let read = floatReader(x)
        let converted = scratch.pointer.assumingMemoryBound(to: Float.self)
        for i in 0..<(rows * features) { converted[i] = read(i) }
        input = UnsafePointer(converted)
    } else {
        input = UnsafePointer(x.floats())
    }
    for r in 0..<rows {
        for t in 0..<targets { y[r * targets + t] = intercepts?[t] ?? 0 }
    }
    coefficients.withUnsafeBufferPointer { c in
        backend.sgemm(
            transposeA: false, transposeB: true, m: rows, n: targets, k: features, alpha: 1,
            a: input, lda: max(features, 1), b: c.baseAddress!, ldb: max(features, 1), beta: 1, c: y, ldc: targets)
    }
}

/// LinearRegressor (ml opset 1): `Y = X · coefficientsᵀ + intercepts`, `[N, targets]` FP32,
/// then the post transform (one target: PROBIT only, as onnxruntime). FP32 input, as onnxruntime.
struct LinearRegressorOperator: Operator {
    let coefficients: [Float]
    let intercepts: [Float]?
    let targets: Int
    let post: ScoreTransform

    init(attributes: NodeAttributes) throws(RuntimeError) {
        try attributes.refuseUnknown(known: ["coefficients", "intercepts", "post_transform", "targets"])
        guard let coefficients = try attributes.floats("coefficients"), !coefficients.isEmpty else {
            throw RuntimeError(code: .invalidModel, message: "attribute 'coefficients' is required")
        }
        targets = try attributes.int("targets", default: 1)
        guard targets >= 1, coefficients.count % targets == 0 else {
            throw RuntimeError(code: .invalidModel, message: "\(coefficients.count) coefficients are not a multiple of targets \(targets)")
        }
        self.coefficients = coefficients
        let given = try attributes.floats("intercepts") ?? []
        intercepts = given.count == targets ? given : nil  // onnxruntime ignores intercepts of another length
        post = try attributes.scoreTransform()
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        guard x.dataType == .fp32 else { throw unsupported(x.dataType, "FP32") }
        try checkMatrix(self, x)
        guard let shape = x.shape else { return [ValueType(dataType: .fp32, shape: nil)] }
        let features = shape.last ?? 0
        if features >= 0, features.multipliedReportingOverflow(by: targets) != (coefficients.count, false) {
            throw failure("X has \(features) features, the model \(coefficients.count / targets) (\(coefficients.count) coefficients for \(targets) targets)")
        }
        return [ValueType(dataType: .fp32, shape: [shape.count == 1 ? 1 : shape[0], targets])]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let (rows, _) = rowsAndFeatures(x.shape)
        let y = outputs[0].floats()
        let (coefficients, intercepts, targets, post) = (coefficients, intercepts, targets, post)
        return {
            linearScores(x, coefficients: coefficients, intercepts: intercepts, targets: targets, scratch: nil, y: y, backend: backend)
            guard post != .none else { return }
            if targets == 1 {
                if post == .probit { for r in 0..<rows { y[r] = ScoreTransform.probit(y[r]) } }
                return
            }
            for r in 0..<rows { post.apply(to: y + r * targets, count: targets) }
        }
    }
}

/// LinearClassifier (ml opset 1): scores `X · coefficientsᵀ + intercepts` for `intercepts.count`
/// classes, labels by the largest score (one score: label 1 when above 0), INT64 labels; with
/// one score and two labels the scores output gains the second class (`[1 − s, s]`, as
/// onnxruntime). Inputs FP32, FP64, INT32, INT64 (cast to FP32).
struct LinearClassifierOperator: Operator {
    let coefficients: [Float]
    let intercepts: [Float]
    let labels: [Int64]
    let post: ScoreTransform

    var scoreCount: Int { intercepts.count }
    var secondClass: Bool { scoreCount == 1 && labels.count == 2 }

    init(attributes: NodeAttributes) throws(RuntimeError) {
        try attributes.refuseUnknown(known: ["classlabels_ints", "classlabels_strings", "coefficients", "intercepts", "multi_class", "post_transform"])
        if attributes.has("classlabels_strings") {
            throw RuntimeError(
                code: .unsupportedOperator,
                message: "attribute 'classlabels_strings': string class labels are not supported; train on integer labels (e.g. sklearn.preprocessing.LabelEncoder) and map them back after the prediction")
        }
        guard let coefficients = try attributes.floats("coefficients"), !coefficients.isEmpty else {
            throw RuntimeError(code: .invalidModel, message: "attribute 'coefficients' is required")
        }
        guard let intercepts = try attributes.floats("intercepts"), !intercepts.isEmpty, coefficients.count % intercepts.count == 0 else {
            throw RuntimeError(code: .invalidModel, message: "attribute 'intercepts' must give one value per class, and the coefficients a row per class")
        }
        let labels = (try attributes.ints("classlabels_ints") ?? []).map(Int64.init)
        guard intercepts.count == 1 || labels.count == intercepts.count else {
            throw RuntimeError(code: .invalidModel, message: "\(intercepts.count) classes scored, \(labels.count) labels in classlabels_ints")
        }
        self.coefficients = coefficients
        self.intercepts = intercepts
        self.labels = labels
        post = try attributes.scoreTransform()
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        try checkMatrix(self, x)
        let columns = secondClass ? 2 : scoreCount
        guard let shape = x.shape else { return [ValueType(dataType: .int64, shape: nil), ValueType(dataType: .fp32, shape: nil)] }
        let features = shape.last ?? 0
        if features >= 0, features.multipliedReportingOverflow(by: scoreCount) != (coefficients.count, false) {
            throw failure("X has \(features) features, the model \(coefficients.count / scoreCount)")
        }
        let rows = shape.count == 1 ? 1 : shape[0]
        return [ValueType(dataType: .int64, shape: [rows]), ValueType(dataType: .fp32, shape: [rows, columns])]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let (rows, features) = rowsAndFeatures(x.shape)
        let (label, z) = (outputs[0].int64s(), outputs[1].floats())
        let scratch = x.dataType == .fp32 ? nil : TensorBuffer(byteCount: rows * features * 4)
        let (coefficients, intercepts, labels, post, classes, second) = (coefficients, intercepts, labels, post, scoreCount, secondClass)
        return {
            // Scores go to z's first rows × classes values; with a second class they spread after.
            linearScores(x, coefficients: coefficients, intercepts: intercepts, targets: classes, scratch: scratch, y: z, backend: backend)
            for r in 0..<rows {
                if classes == 1 {
                    let positive = z[r] > 0
                    label[r] = labels.count == 2 ? labels[positive ? 1 : 0] : (positive ? 1 : 0)
                } else {
                    var best = 0
                    for k in 1..<classes where z[r * classes + k] > z[r * classes + best] { best = k }
                    label[r] = labels[best]
                }
            }
            if classes == 1 {
                if post == .probit {
                    for r in 0..<rows { z[r] = ScoreTransform.probit(z[r]) }
                }
                if second {
                    // Back to front: row r's score moves to 2r + 1, its complement to 2r.
                    for r in stride(from: rows - 1, through: 0, by: -1) {
                        let s = z[r]
                        z[2 * r] = 1 - s
                        z[2 * r + 1] = s
                    }
                }
                return
            }
            for r in 0..<rows { post.apply(to: z + r * classes, count: classes) }
        }
    }
}

/// Scaler (ml opset 1): `Y = (X − offset) · scale`, FP32 out; offset and scale of length 1 or
/// the feature count.
struct ScalerOperator: Operator {
    let offset: [Float]
    let scale: [Float]

    init(attributes: NodeAttributes) throws(RuntimeError) {
        try attributes.refuseUnknown(known: ["offset", "scale"])
        scale = try attributes.floats("scale") ?? []
        offset = try attributes.floats("offset") ?? []
        guard !scale.isEmpty, scale.count == offset.count else {
            throw RuntimeError(code: .invalidModel, message: "scale (\(scale.count) values) and offset (\(offset.count)) must be given with the same length")
        }
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        try checkMatrix(self, x)
        if let features = x.shape?.last, features >= 0, scale.count != 1, scale.count != features {
            throw failure("scale and offset have \(scale.count) values; X has \(features) features (use 1 or \(features))")
        }
        return [ValueType(dataType: .fp32, shape: x.shape)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let (rows, features) = rowsAndFeatures(x.shape)
        let y = outputs[0].floats()
        let (offset, scale) = (offset, scale)
        let width = scale.count
        if x.dataType == .fp64 {
            // onnxruntime subtracts and scales in double, then rounds.
            let input = x.pointer.assumingMemoryBound(to: Double.self)
            return {
                for i in 0..<(rows * features) {
                    let j = width == 1 ? 0 : i % features
                    y[i] = Float((input[i] - Double(offset[j])) * Double(scale[j]))
                }
            }
        }
        let read = floatReader(x)
        return {
            for i in 0..<(rows * features) {
                let j = width == 1 ? 0 : i % features
                y[i] = (read(i) - offset[j]) * scale[j]
            }
        }
    }
}

/// Normalizer (ml opset 1): each row divided by its MAX, L1 or L2 norm (a zero norm leaves the
/// row as is), FP32 out, as onnxruntime computes it.
struct NormalizerOperator: Operator {
    enum Norm { case max, l1, l2 }
    let norm: Norm

    init(attributes: NodeAttributes) throws(RuntimeError) {
        try attributes.refuseUnknown(known: ["norm"])
        switch try attributes.string("norm", default: "MAX") {
        case "MAX": norm = .max
        case "L1": norm = .l1
        case "L2": norm = .l2
        case let other: throw RuntimeError(code: .invalidModel, message: "norm '\(other)' is not MAX, L1 or L2")
        }
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        try checkMatrix(self, x)
        return [ValueType(dataType: .fp32, shape: x.shape)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let (rows, features) = rowsAndFeatures(x.shape)
        let y = outputs[0].floats()
        let read = floatReader(x)
        // L2 squares in the input's type before rounding (onnxruntime's `static_cast<float>(x * x)`).
        let square: (Int) -> Float
        switch x.dataType {
        case .fp64: let p = x.pointer.assumingMemoryBound(to: Double.self); square = { Float(p[$0] * p[$0]) }
        case .int32: let p = x.int32s(); square = { Float(p[$0] &* p[$0]) }
        case .int64: let p = x.int64s(); square = { Float(p[$0] &* p[$0]) }
        default: let p = x.floats(); square = { p[$0] * p[$0] }
        }
        let norm = norm
        return {
            for r in 0..<rows {
                let first = r * features
                switch norm {
                case .max:
                    var top = -Float.greatestFiniteMagnitude
                    for i in first..<(first + features) { top = Swift.max(top, read(i)) }
                    for i in first..<(first + features) { y[i] = top != 0 ? read(i) / top : read(i) }
                case .l1:
                    var sum: Float = 0
                    for i in first..<(first + features) { sum += abs(read(i)) }
                    for i in first..<(first + features) { y[i] = sum != 0 ? read(i) / sum : read(i) }
                case .l2:
                    var sum: Float = 0
                    for i in first..<(first + features) { sum += square(i) }
                    for i in first..<(first + features) {
                        if sum == 0 {
                            y[i] = read(i)
                        } else {
                            let v = (square(i) / sum).squareRoot()
                            y[i] = read(i) < 0 ? -v : v
                        }
                    }
                }
            }
        }
    }
}
