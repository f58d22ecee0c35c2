import FulcrumKernels

/// Graph rewrites done once at load, after constant folding:
///
/// - **Gelu**: the erf form exported by PyTorch, `x · 0.5 · (1 + erf(x / √2))` (as
///   `Div|Mul → Erf → Add → Mul → Mul` in either multiplication order), becomes one Gelu node.
/// - **Dense**: `MatMul(X, W)` with a constant 2-D `W`, followed by `Add` of a constant bias of
///   `N` elements and/or an activation (Relu, Sigmoid, Tanh, Gelu, LeakyRelu), becomes one
///   node: the bias is written into the output, `sgemm` accumulates onto it, and the
///   activation runs in place while the rows are still in cache. `Gemm` followed by an
///   activation fuses the same way.
///
/// - **Attention**: `MatMul(Q, Kᵀ) → [Mul|Div by a constant scalar] → [Add mask] → Softmax →
///   MatMul(·, V)`, with Transposes directly before Q, Kᵀ, V or after the context, becomes one
///   `AttentionOperator` node: no scores tensor, no transposed copies.
///
/// - **Convolution**: `Conv` with constant weights followed by `BatchNormalization` with constant
///   statistics becomes one Conv with folded weights and bias (`W·s`, `(B − mean)·s + β`,
///   `s = γ / √(var + ε)`, computed in double once at load), and an activation after the Conv (or
///   the folded pair) runs in the same pass over the output.
///
/// A pattern fuses only when its intermediate values have exactly one reader and are not graph
/// outputs, so nothing observable changes.
extension ExecutionPlan {
    mutating func fuse(attention: Bool = true) {
        if attention { fuseAttention() }
        fuseGelu()
        fuseDense()
        fuseConvolution()
    }

    /// Readers of each value (node indices), graph outputs counted as an extra reader.
    private func readers() -> [Int: Int] {
        var count: [Int: Int] = [:]
        for node in nodes {
            for id in node.inputs where id >= 0 { count[id, default: 0] += 1 }
        }
        for output in outputs { count[output.value, default: 0] += 1 }
        return count
    }

    /// The index of the node producing `id`.
    private func producers() -> [Int: Int] {
        var map: [Int: Int] = [:]
        for (index, node) in nodes.enumerated() {
            for id in node.outputs where id >= 0 { map[id] = index }
        }
        return map
    }

    /// The single consumer of `id` (and which input it reads it as), when there is exactly one.
    private func soleConsumer(of id: Int, _ readers: [Int: Int], _ removed: Set<Int>) -> (node: Int, input: Int)? {
        guard readers[id] == 1 else { return nil }
        for (index, node) in nodes.enumerated() where !removed.contains(index) {
            if let position = node.inputs.firstIndex(of: id) { return (index, position) }
        }
        return nil
    }

    /// The value of a constant FP32 scalar (any shape with one element).
    private func scalar(_ id: Int) -> Float? {
        guard id >= 0, let buffer = constants[id], valueTypes[id].dataType == .fp32, valueTypes[id].elementCount == 1 else { return nil }
        return buffer.pointer.load(as: Float.self)
    }

    private func isScalar(_ id: Int, _ expected: Float, tolerance: Float = 1e-4) -> Bool {
        guard let value = scalar(id) else { return false }
        return abs(value - expected) <= tolerance * abs(expected)
    }

    /// For a binary node reading `id`, the other input.
    private func other(_ node: Node, than id: Int) -> Int? {
        guard node.inputs.count == 2 else { return nil }
        if node.inputs[0] == id { return node.inputs[1] }
        if node.inputs[1] == id { return node.inputs[0] }
        return nil
    }

    private mutating func fuseGelu() {
        var readers = readers()
        var removed: Set<Int> = []
        for (erfIndex, erf) in nodes.enumerated() where erf.opType == "Erf" && !removed.contains(erfIndex) {
            let producers = producers()
            guard let scaledIndex = producers[erf.inputs[0]], readers[erf.inputs[0]] == 1 else { continue }
            let scaled = nodes[scaledIndex]
            guard scaled.inputs.count == 2 else { continue }
            let x: Int
            if scaled.opType == "Div", isScalar(scaled.inputs[1], 1.41421356) {
                x = scaled.inputs[0]
            } else if scaled.opType == "Mul", let c = other(scaled, than: scaled.inputs[0]), isScalar(c, 0.70710678) {
                x = scaled.inputs[0]
            } else if scaled.opType == "Mul", isScalar(scaled.inputs[0], 0.70710678) {
                x = scaled.inputs[1]
            } else {
                continue
            }
            guard let (addIndex, _) = soleConsumer(of: erf.outputs[0], readers, removed) else { continue }
            let add = nodes[addIndex]
            guard add.opType == "Add", let one = other(add, than: erf.outputs[0]), isScalar(one, 1) else { continue }
            guard let (mul1Index, _) = soleConsumer(of: add.outputs[0], readers, removed) else { continue }
            let mul1 = nodes[mul1Index]
            guard mul1.opType == "Mul", let partner = other(mul1, than: add.outputs[0]) else { continue }
            var chain = [scaledIndex, erfIndex, addIndex, mul1Index]
            let result: Int
            if partner == x {
                // (x · (1 + erf)) · 0.5
                guard let (mul2Index, _) = soleConsumer(of: mul1.outputs[0], readers, removed) else { continue }
                let mul2 = nodes[mul2Index]
                guard mul2.opType == "Mul", let half = other(mul2, than: mul1.outputs[0]), isScalar(half, 0.5) else { continue }
                chain.append(mul2Index)
                result = mul2.outputs[0]
            } else if let halfIndex = producers[partner], readers[partner] == 1, nodes[halfIndex].opType == "Mul",
                let half = other(nodes[halfIndex], than: x), isScalar(half, 0.5)
            {
                // (x · 0.5) · (1 + erf)
                chain.append(halfIndex)
                result = mul1.outputs[0]
            } else {
                continue
            }
            let last = chain.max()!
            nodes[last] = Node(
                name: nodes[mul1Index].name, opType: "Gelu", op: UnaryElementwiseOperator(kind: .gelu),
                inputs: [x], outputs: [result])
            removed.formUnion(chain.filter { $0 != last })
            fusions.append("Erf-form Gelu → Gelu (\(nodes[last].name))")
            readers[x, default: 0] += 1  // x keeps a reader; the chain's own reads go away with it
        }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// Whether `node` is a MatMul that nothing was fused into.
    private func isPlainMatMul(_ node: Node) -> Bool {
        guard node.opType == "MatMul", let op = node.op as? MatMulOperator else { return false }
        return !op.bias && op.activation == .none && node.inputs.count == 2
    }

    private mutating func fuseAttention() {
        let readers = readers()
        let producers = producers()
        var removed: Set<Int> = []
        var replacements: [Int: Node] = [:]
        /// The node producing `id` when `id` has no other reader and is not a graph output.
        func soleProducer(_ id: Int) -> Int? {
            guard id >= 0, readers[id] == 1, let index = producers[id], !removed.contains(index) else { return nil }
            return index
        }
        for (softmaxIndex, softmaxNode) in nodes.enumerated() where softmaxNode.opType == "Softmax" {
            guard let softmax = softmaxNode.op as? SoftmaxOperator, !softmax.logarithm else { continue }
            var chain = [softmaxIndex]
            var current = softmaxNode.inputs[0]
            var maskIndex: Int?, mask = -1
            var scaleIndex: Int?, scale = -1, divides = false
            // [Add mask]: the operand that continues the chain comes from the scaling or the MatMul.
            if let index = soleProducer(current), nodes[index].opType == "Add", nodes[index].inputs.count == 2 {
                let add = nodes[index]
                let continues = add.inputs.map { id -> Bool in
                    guard let p = soleProducer(id) else { return false }
                    return ["Mul", "Div"].contains(nodes[p].opType) || isPlainMatMul(nodes[p])
                }
                if let position = continues.firstIndex(of: true), valueTypes[add.inputs[1 - position]].dataType == .fp32 {
                    maskIndex = index
                    mask = add.inputs[1 - position]
                    current = add.inputs[position]
                    chain.append(index)
                }
            }
            // [Mul|Div by a constant scalar].
            if let index = soleProducer(current), nodes[index].inputs.count == 2 {
                let node = nodes[index]
                if node.opType == "Div", scalar(node.inputs[1]) != nil, node.inputs[0] >= 0 {
                    (scaleIndex, scale, divides, current) = (index, node.inputs[1], true, node.inputs[0])
                } else if node.opType == "Mul", let c = node.inputs.firstIndex(where: { scalar($0) != nil }) {
                    (scaleIndex, scale, current) = (index, node.inputs[c], node.inputs[1 - c])
                }
                if let scaleIndex { chain.append(scaleIndex) }
            }
            guard let scoresIndex = soleProducer(current), isPlainMatMul(nodes[scoresIndex]) else { continue }
            chain.append(scoresIndex)
            let probabilities = softmaxNode.outputs[0]
            guard probabilities >= 0, let (contextIndex, position) = soleConsumer(of: probabilities, readers, removed), position == 0,
                isPlainMatMul(nodes[contextIndex])
            else { continue }
            chain.append(contextIndex)
            var output = nodes[contextIndex].outputs[0]
            guard output >= 0 else { continue }
            var outputTranspose: TransposeOperator?
            if let (index, _) = soleConsumer(of: output, readers, removed), let transpose = nodes[index].op as? TransposeOperator,
                nodes[index].outputs.count == 1, nodes[index].outputs[0] >= 0
            {
                outputTranspose = transpose
                output = nodes[index].outputs[0]
                chain.append(index)
            }
            // Transposes feeding Q, Kᵀ and V that only attention reads.
            func absorbed(_ id: Int) -> (value: Int, transpose: TransposeOperator?, node: Int?) {
                if let index = soleProducer(id), let transpose = nodes[index].op as? TransposeOperator, nodes[index].inputs[0] >= 0 {
                    return (nodes[index].inputs[0], transpose, index)
                }
                return (id, nil, nil)
            }
            let q = absorbed(nodes[scoresIndex].inputs[0])
            let k = absorbed(nodes[scoresIndex].inputs[1])
            let v = absorbed(nodes[contextIndex].inputs[1])
            chain += [q.node, k.node, v.node].compactMap { $0 }
            guard Set(chain).isDisjoint(with: removed), Set(chain).count == chain.count else { continue }

            // The steps, in graph order, reading the fused node's inputs or earlier steps.
            let order = chain.sorted()
            var stepOf: [Int: Int] = [:]  // value id → step producing it
            var steps: [AttentionOperator.Step] = []
            var valid = true
            for index in order {
                let node = nodes[index]
                var sources: [AttentionOperator.Source] = []
                for (slot, id) in node.inputs.enumerated() {
                    if let step = stepOf[id] {
                        sources.append(.step(step))
                    } else if index == q.node || (index == scoresIndex && slot == 0) {
                        sources.append(.input(AttentionOperator.queryInput))
                    } else if index == k.node || (index == scoresIndex && slot == 1) {
                        sources.append(.input(AttentionOperator.keyInput))
                    } else if index == v.node || (index == contextIndex && slot == 1) {
                        sources.append(.input(AttentionOperator.valueInput))
                    } else if index == scaleIndex && id == scale {
                        sources.append(.input(AttentionOperator.scaleInput))
                    } else if index == maskIndex && id == mask {
                        sources.append(.input(AttentionOperator.maskInput))
                    } else {
                        valid = false
                    }
                }
                stepOf[node.outputs[0]] = steps.count
                steps.append(AttentionOperator.Step(op: node.op, sources: sources))
            }
            guard valid else { continue }
            let op = AttentionOperator(
                steps: steps, queryTranspose: q.transpose, keyTranspose: k.transpose, valueTranspose: v.transpose,
                outputTranspose: outputTranspose, dividesByScale: divides,
                scoresStep: order.firstIndex(of: scoresIndex)!, scaleStep: scaleIndex.flatMap { order.firstIndex(of: $0) },
                maskStep: maskIndex.flatMap { order.firstIndex(of: $0) }, softmaxStep: order.firstIndex(of: softmaxIndex)!,
                contextStep: order.firstIndex(of: contextIndex)!)
            let last = order.last!
            replacements[last] = Node(
                name: nodes[contextIndex].name, opType: "Attention", op: op,
                inputs: [q.value, k.value, v.value, scale, mask], outputs: [output])
            removed.formUnion(order.dropLast())
            let parts = order.map { nodes[$0].opType }
            fusions.append("Attention (\(parts.joined(separator: " + "))) → one node (\(nodes[contextIndex].name))")
        }
        for (index, node) in replacements { nodes[index] = node }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// The activation a node applies, when it is one the dense epilogue runs.
    private func activation(of node: Node) -> Activation? {
        if let unary = node.op as? UnaryElementwiseOperator {
            switch unary.kind {
            case .relu: return .relu
            case .sigmoid: return .sigmoid
            case .tanh: return .tanh
            case .gelu: return .gelu
            case .geluTanh: return .geluTanh
            default: return nil
            }
        }
        if let leaky = node.op as? LeakyReluOperator { return .leakyRelu(alpha: leaky.alpha) }
        return nil
    }

    private mutating func fuseDense() {
        let readers = readers()
        var removed: Set<Int> = []
        for (index, node) in nodes.enumerated() where !removed.contains(index) {
            guard var result = node.outputs.first, result >= 0 else { continue }
            var chain: [Int] = []
            var inputs = node.inputs
            var bias = false
            var names = [node.opType]
            if node.opType == "MatMul" {
                guard node.inputs.count >= 2, node.inputs[0] >= 0, node.inputs[1] >= 0 else { continue }
                let w = node.inputs[1]
                guard constants[w] != nil, let shape = valueTypes[w].shape, shape.count == 2,
                    let inputShape = valueTypes[node.inputs[0]].shape, inputShape.count >= 2
                else { continue }
                if let (addIndex, _) = soleConsumer(of: result, readers, removed), nodes[addIndex].opType == "Add",
                    let b = other(nodes[addIndex], than: result), constants[b] != nil,
                    let biasShape = valueTypes[b].shape, valueTypes[b].dataType == .fp32,
                    biasShape.reduce(1, *) == shape[1], biasShape.last == shape[1], biasShape.count <= 2
                {
                    chain.append(addIndex)
                    result = nodes[addIndex].outputs[0]
                    inputs.append(b)
                    bias = true
                    names.append("Add")
                }
            } else if node.opType != "Gemm" {
                continue
            }
            var act = Activation.none
            if let (actIndex, a) = trailingActivation(of: result, readers, removed) {
                act = a
                chain.append(actIndex)
                result = nodes[actIndex].outputs[0]
                names.append(nodes[actIndex].opType)
            }
            guard !chain.isEmpty else { continue }
            let op: any Operator
            if node.opType == "Gemm", let gemm = node.op as? GemmOperator {
                op = gemm.with(activation: act)
            } else {
                op = MatMulOperator(bias: bias, activation: act)
            }
            place(index, chain: chain, names: names, op: op, inputs: inputs, output: result, removed: &removed)
        }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// The activation node that alone reads `result`, when a fused epilogue can run it.
    private func trailingActivation(of result: Int, _ readers: [Int: Int], _ removed: Set<Int>) -> (node: Int, activation: Activation)? {
        guard let (index, _) = soleConsumer(of: result, readers, removed), let activation = activation(of: nodes[index]) else { return nil }
        return (index, activation)
    }

    private func trailingHardSwish(of result: Int, _ readers: [Int: Int], _ removed: Set<Int>) -> (node: Int, activation: Activation)? {
        guard let (index, _) = soleConsumer(of: result, readers, removed), let op = nodes[index].op as? HardSigmoidOperator, op.swish
        else { return nil }
        return (index, .hardSwish)
    }

    /// Puts the fused node for `head` and the nodes of `chain` at the chain's last position (where
    /// every input of them is available), marks the others removed and records the fusion.
    private mutating func place(_ head: Int, chain: [Int], names: [String], op: any Operator, inputs: [Int], output: Int, removed: inout Set<Int>) {
        let name = nodes[head].name
        let last = chain.max()!
        nodes[last] = Node(name: name, opType: names.joined(separator: "+"), op: op, inputs: inputs, outputs: [output])
        removed.insert(head)
        removed.formUnion(chain.filter { $0 != last })
        fusions.append("\(names.joined(separator: " + ")) → one node (\(name))")
    }

    /// Defines a new constant FP32 value (for folded weights).
    private mutating func addConstant(_ name: String, shape: [Int], _ values: [Float]) -> Int {
        let id = valueNames.count
        valueNames.append(name)
        valueTypes.append(ValueType(dataType: .fp32, shape: shape))
        constants[id] = TensorBuffer(bytes: values.withUnsafeBytes { Array($0) })
        return id
    }

    private func floats(_ id: Int) -> [Float]? {
        guard id >= 0, let buffer = constants[id], valueTypes[id].dataType == .fp32, let count = valueTypes[id].elementCount else { return nil }
        return Array(UnsafeBufferPointer(start: buffer.pointer.assumingMemoryBound(to: Float.self), count: count))
    }

    private mutating func fuseConvolution() {
        let readers = readers()
        var removed: Set<Int> = []
        for (index, node) in nodes.enumerated() where !removed.contains(index) {
            guard node.opType == "Conv", var conv = node.op as? ConvOperator, var result = node.outputs.first, result >= 0,
                  node.inputs.count >= 2
            else { continue }
            var chain: [Int] = []
            var names = ["Conv"]
            var inputs = node.inputs
            if let (bnIndex, slot) = soleConsumer(of: result, readers, removed), slot == 0,
               let bn = nodes[bnIndex].op as? BatchNormalizationOperator, nodes[bnIndex].inputs.count == 5,
               let gamma = floats(nodes[bnIndex].inputs[1]), let beta = floats(nodes[bnIndex].inputs[2]),
               let mean = floats(nodes[bnIndex].inputs[3]), let variance = floats(nodes[bnIndex].inputs[4]),
               let weights = floats(inputs[1]), let wShape = valueTypes[inputs[1]].shape, wShape.count == 4
            {
                let m = wShape[0]
                let bias = inputs.count > 2 && inputs[2] >= 0 ? floats(inputs[2]) : [Float](repeating: 0, count: m)
                if let bias, bias.count == m, [gamma, beta, mean, variance].allSatisfy({ $0.count == m }) {
                    let perFilter = weights.count / m
                    var folded = weights
                    var foldedBias = bias
                    for f in 0..<m {
                        let s = Double(gamma[f]) / (Double(variance[f]) + Double(bn.epsilon)).squareRoot()
                        for i in (f * perFilter)..<((f + 1) * perFilter) { folded[i] = Float(Double(weights[i]) * s) }
                        foldedBias[f] = Float((Double(bias[f]) - Double(mean[f])) * s + Double(beta[f]))
                    }
                    let w = addConstant(valueNames[inputs[1]] + "·bn", shape: wShape, folded)
                    let b = addConstant(valueNames[inputs[1]] + "·bn.bias", shape: [m], foldedBias)
                    inputs = [inputs[0], w, b]
                    chain.append(bnIndex)
                    result = nodes[bnIndex].outputs[0]
                    names.append("BatchNormalization")
                }
            }
            // HardSwish (MobileNetV3's activation) fuses into convolutions only: the products'
            // and the depthwise loops' epilogues apply it; dense products keep it separate.
            if let (actIndex, a) = trailingActivation(of: result, readers, removed) ?? trailingHardSwish(of: result, readers, removed) {
                conv = conv.with(activation: a)
                chain.append(actIndex)
                result = nodes[actIndex].outputs[0]
                names.append(nodes[actIndex].opType)
            }
            guard !chain.isEmpty else { continue }
            place(index, chain: chain, names: names, op: conv, inputs: inputs, output: result, removed: &removed)
        }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }
}
