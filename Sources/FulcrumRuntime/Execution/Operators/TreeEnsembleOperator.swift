import FulcrumKernels
import FulcrumSchema

/// `ai.onnx.ml` tree ensembles: TreeEnsembleRegressor and TreeEnsembleClassifier (ml opsets 1
/// and 3, thresholds and weights as FLOATS or as `*_as_tensor`) and TreeEnsemble (ml opset 5).
/// Input X: FP32 or FP64, `[N, F]` or `[F]`. Outputs: the regressors' `[N, targets]` FP32; the
/// classifier's INT64 labels `[N]` and FP32 scores `[N, classes]`. The forest is validated and
/// laid out once at load (`TreeEnsemble`); an attribute this operator does not read is refused.
struct TreeEnsembleOperator: Operator {
    enum Kind {
        case regressor
        case classifier(TreeEnsemble.ClassifierRules)
    }

    let ensemble: TreeEnsemble
    let kind: Kind

    private static let nodeAttributes = [
        "nodes_falsenodeids", "nodes_featureids", "nodes_hitrates", "nodes_hitrates_as_tensor", "nodes_missing_value_tracks_true",
        "nodes_modes", "nodes_nodeids", "nodes_treeids", "nodes_truenodeids", "nodes_values", "nodes_values_as_tensor",
        "post_transform", "base_values", "base_values_as_tensor",
    ]

    private static func required<T>(_ value: T?, _ name: String) throws(RuntimeError) -> T {
        guard let value else { throw RuntimeError(code: .invalidModel, message: "attribute '\(name)' is required") }
        return value
    }

    /// The node tuples shared by the opset 1/3 regressor and classifier.
    private static func nodes(_ attributes: NodeAttributes) throws(RuntimeError) -> TreeEnsemble.Description {
        var d = TreeEnsemble.Description()
        d.nodeIDs = try required(attributes.ints("nodes_nodeids"), "nodes_nodeids")
        d.treeIDs = try required(attributes.ints("nodes_treeids"), "nodes_treeids")
        d.featureIDs = try required(attributes.ints("nodes_featureids"), "nodes_featureids")
        d.trueNodeIDs = try required(attributes.ints("nodes_truenodeids"), "nodes_truenodeids")
        d.falseNodeIDs = try required(attributes.ints("nodes_falsenodeids"), "nodes_falsenodeids")
        d.thresholds = try required(attributes.reals("nodes_values"), "nodes_values")
        var modes: [TreeEnsemble.Mode] = []
        for name in try required(attributes.strings("nodes_modes"), "nodes_modes") {
            guard let mode = TreeEnsemble.Mode(name: name), mode != .member else {
                throw RuntimeError(code: .invalidModel, message: "nodes_modes: '\(name)' is not BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, BRANCH_GT, BRANCH_EQ, BRANCH_NEQ or LEAF")
            }
            modes.append(mode)
        }
        d.modes = modes
        d.missingGoesTrue = try attributes.ints("nodes_missing_value_tracks_true")?.map { $0 != 0 } ?? []
        d.baseValues = try attributes.reals("base_values") ?? []
        d.postTransform = try attributes.scoreTransform()
        return d
    }

    private static func build(_ d: TreeEnsemble.Description) throws(RuntimeError) -> TreeEnsemble {
        do throws(TreeEnsemble.Malformed) {
            return try TreeEnsemble(d)
        } catch {
            throw RuntimeError(code: .invalidModel, message: error.description)
        }
    }

    /// TreeEnsembleRegressor.
    init(regressor attributes: NodeAttributes) throws(RuntimeError) {
        try attributes.refuseUnknown(known: Self.nodeAttributes + [
            "aggregate_function", "n_targets", "target_ids", "target_nodeids", "target_treeids", "target_weights", "target_weights_as_tensor",
        ])
        var d = try Self.nodes(attributes)
        d.outputCount = try attributes.int("n_targets", default: 1)
        d.weightOutputs = try Self.required(attributes.ints("target_ids"), "target_ids")
        d.weightNodeIDs = try Self.required(attributes.ints("target_nodeids"), "target_nodeids")
        d.weightTreeIDs = try Self.required(attributes.ints("target_treeids"), "target_treeids")
        d.weights = try Self.required(attributes.reals("target_weights"), "target_weights")
        switch try attributes.string("aggregate_function", default: "SUM") {
        case "SUM": d.aggregate = .sum
        case "AVERAGE": d.aggregate = .average
        case "MIN": d.aggregate = .minimum
        case "MAX": d.aggregate = .maximum
        case let other: throw RuntimeError(code: .invalidModel, message: "aggregate_function '\(other)' is not SUM, AVERAGE, MIN or MAX")
        }
        ensemble = try Self.build(d)
        kind = .regressor
    }

    /// TreeEnsembleClassifier (integer labels).
    init(classifier attributes: NodeAttributes) throws(RuntimeError) {
        try attributes.refuseUnknown(known: Self.nodeAttributes + [
            "class_ids", "class_nodeids", "class_treeids", "class_weights", "class_weights_as_tensor", "classlabels_int64s", "classlabels_strings",
        ])
        if attributes.has("classlabels_strings") {
            throw RuntimeError(
                code: .unsupportedOperator,
                message: "attribute 'classlabels_strings': string class labels are not supported; train on integer labels (e.g. sklearn.preprocessing.LabelEncoder) and map them back after the prediction")
        }
        let labels = try Self.required(attributes.ints("classlabels_int64s"), "classlabels_int64s")
        guard labels.count >= 2 else {
            throw RuntimeError(code: .invalidModel, message: "classlabels_int64s has \(labels.count) label(s); a classifier needs at least 2")
        }
        var d = try Self.nodes(attributes)
        d.outputCount = labels.count
        d.weightOutputs = try Self.required(attributes.ints("class_ids"), "class_ids")
        d.weightNodeIDs = try Self.required(attributes.ints("class_nodeids"), "class_nodeids")
        d.weightTreeIDs = try Self.required(attributes.ints("class_treeids"), "class_treeids")
        d.weights = try Self.required(attributes.reals("class_weights"), "class_weights")
        ensemble = try Self.build(d)
        kind = .classifier(TreeEnsemble.ClassifierRules(
            labels: labels.map(Int64.init), weightClasses: Set(d.weightOutputs), weightsAllPositive: d.weights.allSatisfy { $0 >= 0 }))
    }

    /// TreeEnsemble (ml opset 5): branch and leaf arrays apart, trees listed by their roots.
    init(opset5 attributes: NodeAttributes) throws(RuntimeError) {
        try attributes.refuseUnknown(known: [
            "aggregate_function", "leaf_targetids", "leaf_weights", "membership_values", "n_targets", "nodes_falseleafs",
            "nodes_falsenodeids", "nodes_featureids", "nodes_hitrates", "nodes_missing_value_tracks_true", "nodes_modes",
            "nodes_splits", "nodes_trueleafs", "nodes_truenodeids", "post_transform", "tree_roots",
        ])
        func reals(_ name: String) throws(RuntimeError) -> [Double] {
            try Self.required(attributes.realTensor(name), name)
        }
        let splits = try reals("nodes_splits")
        let branches = splits.count
        let featureIDs = try Self.required(attributes.ints("nodes_featureids"), "nodes_featureids")
        let trueIDs = try Self.required(attributes.ints("nodes_truenodeids"), "nodes_truenodeids")
        let falseIDs = try Self.required(attributes.ints("nodes_falsenodeids"), "nodes_falsenodeids")
        let trueLeafs = try Self.required(attributes.ints("nodes_trueleafs"), "nodes_trueleafs")
        let falseLeafs = try Self.required(attributes.ints("nodes_falseleafs"), "nodes_falseleafs")
        let missing = try attributes.ints("nodes_missing_value_tracks_true") ?? []
        guard let modeTensor = try attributes.tensor("nodes_modes"), modeTensor.type.dataType == .uint8 else {
            throw RuntimeError(code: .invalidModel, message: "attribute 'nodes_modes' must be a UINT8 tensor")
        }
        let modeCodes = modeTensor.bytes
        for (name, count) in [("nodes_featureids", featureIDs.count), ("nodes_truenodeids", trueIDs.count), ("nodes_falsenodeids", falseIDs.count),
                              ("nodes_trueleafs", trueLeafs.count), ("nodes_falseleafs", falseLeafs.count), ("nodes_modes", modeCodes.count)]
        where count != branches {
            throw RuntimeError(code: .invalidModel, message: "\(name) has \(count) entries, nodes_splits \(branches)")
        }
        guard missing.isEmpty || missing.count == branches else {
            throw RuntimeError(code: .invalidModel, message: "nodes_missing_value_tracks_true has \(missing.count) entries, nodes_splits \(branches)")
        }
        let leafTargets = try Self.required(attributes.ints("leaf_targetids"), "leaf_targetids")
        let leafWeights = try reals("leaf_weights")
        guard leafTargets.count == leafWeights.count else {
            throw RuntimeError(code: .invalidModel, message: "leaf_targetids has \(leafTargets.count) entries, leaf_weights \(leafWeights.count)")
        }
        let roots = try Self.required(attributes.ints("tree_roots"), "tree_roots")
        let modeTable: [TreeEnsemble.Mode] = [.lessOrEqual, .less, .greaterOrEqual, .greater, .equal, .notEqual, .member]
        var memberValues = try attributes.tensor("membership_values") == nil ? [] : reals("membership_values")

        // Ids in the description: branch i is node i, leaf j is node branches + j; each
        // tree takes every node its root reaches (a node reached twice is refused there).
        var d = TreeEnsemble.Description()
        var owner = [Int](repeating: -1, count: branches + leafWeights.count)
        for (tree, root) in roots.enumerated() {
            guard root >= 0, root < branches + leafWeights.count else {
                throw RuntimeError(code: .invalidModel, message: "tree_roots[\(tree)] = \(root) is not a node")
            }
            var stack = [root]
            while let node = stack.popLast() {
                guard owner[node] < 0 else {
                    throw RuntimeError(code: .invalidModel, message: "node \(node) is reached twice (from tree \(owner[node]) and tree \(tree)): the nodes must form separate trees")
                }
                owner[node] = tree
                guard node < branches else { continue }
                for (child, isLeaf) in [(trueIDs[node], trueLeafs[node]), (falseIDs[node], falseLeafs[node])] {
                    guard child >= 0, child < (isLeaf != 0 ? leafWeights.count : branches) else {
                        throw RuntimeError(code: .invalidModel, message: "branch \(node) names a child (\(child), leaf \(isLeaf != 0)) that does not exist")
                    }
                    stack.append(isLeaf != 0 ? branches + child : child)
                }
            }
        }
        for node in 0..<owner.count where owner[node] >= 0 {
            d.treeIDs.append(owner[node])
            d.nodeIDs.append(node)
            if node < branches {
                guard Int(modeCodes[node]) < modeTable.count else {
                    throw RuntimeError(code: .invalidModel, message: "nodes_modes[\(node)] = \(modeCodes[node]) is not a mode (0...6)")
                }
                let mode = modeTable[Int(modeCodes[node])]
                d.modes.append(mode)
                d.featureIDs.append(featureIDs[node])
                d.thresholds.append(mode == .member ? 0 : splits[node])
                d.trueNodeIDs.append(trueLeafs[node] != 0 ? branches + trueIDs[node] : trueIDs[node])
                d.falseNodeIDs.append(falseLeafs[node] != 0 ? branches + falseIDs[node] : falseIDs[node])
                d.missingGoesTrue.append(missing.isEmpty ? false : missing[node] != 0)
                if mode == .member {
                    // membership_values: one NaN-terminated run per BRANCH_MEMBER node, in node order.
                    guard let end = memberValues.firstIndex(where: \.isNaN) else {
                        throw RuntimeError(code: .invalidModel, message: "membership_values has no set for BRANCH_MEMBER node \(node)")
                    }
                    d.memberSets[d.modes.count - 1] = Set(memberValues[..<end])
                    memberValues.removeFirst(end + 1)
                }
            } else {
                d.modes.append(.leaf)
                d.featureIDs.append(0)
                d.thresholds.append(0)
                d.trueNodeIDs.append(0)
                d.falseNodeIDs.append(0)
                d.missingGoesTrue.append(false)
                d.weightTreeIDs.append(owner[node])
                d.weightNodeIDs.append(node)
                d.weightOutputs.append(leafTargets[node - branches])
                d.weights.append(leafWeights[node - branches])
            }
        }
        d.outputCount = try attributes.int("n_targets", default: 1)
        switch try attributes.int("aggregate_function", default: 1) {
        case 0: d.aggregate = .average
        case 1: d.aggregate = .sum
        case 2: d.aggregate = .minimum
        case 3: d.aggregate = .maximum
        case let other: throw RuntimeError(code: .invalidModel, message: "aggregate_function \(other) is not 0 (AVERAGE), 1 (SUM), 2 (MIN) or 3 (MAX)")
        }
        let transforms: [TreeEnsemble.PostTransform] = [.none, .softmax, .logistic, .softmaxZero, .probit]
        let post = try attributes.int("post_transform", default: 0)
        guard transforms.indices.contains(post) else {
            throw RuntimeError(code: .invalidModel, message: "post_transform \(post) is not 0...4")
        }
        d.postTransform = transforms[post]
        ensemble = try Self.build(d)
        kind = .regressor
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        guard x.dataType == .fp32 || x.dataType == .fp64 else { throw unsupported(x.dataType, "FP32, FP64") }
        var rows: Int?
        if let shape = x.shape {
            guard shape.count == 1 || shape.count == 2 else { throw failure("X has rank \(shape.count); tree ensembles take [N, features] or [features]") }
            let columns = shape[shape.count - 1]
            if columns >= 0, columns < ensemble.featureCount {
                throw failure("X has \(columns) features; the trees read feature \(ensemble.featureCount - 1)")
            }
            rows = shape.count == 1 ? 1 : (shape[0] >= 0 ? shape[0] : nil)
        }
        let scores = ValueType(dataType: .fp32, shape: x.shape == nil ? nil : [rows ?? -1, ensemble.outputCount])
        switch kind {
        case .regressor: return [scores]
        case .classifier: return [ValueType(dataType: .int64, shape: x.shape == nil ? nil : [rows ?? -1]), scores]
        }
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let rows = x.shape.count == 1 ? 1 : x.shape[0]
        let columns = x.shape[x.shape.count - 1]
        guard columns >= ensemble.featureCount else { throw failure("X has \(columns) features; the trees read feature \(ensemble.featureCount - 1)") }
        let (cells, overflow) = rows.multipliedReportingOverflow(by: ensemble.outputCount)
        let (bytes, overflow2) = cells.multipliedReportingOverflow(by: MemoryLayout<TreeEnsemble.Score>.stride)
        guard !overflow, !overflow2 else { throw failure("\(rows) rows × \(ensemble.outputCount) outputs is too large") }
        let scratch = TensorBuffer(byteCount: bytes)
        let scores = scratch.pointer.bindMemory(to: TreeEnsemble.Score.self, capacity: max(cells, 1))
        let ensemble = ensemble
        let single = x.dataType == .fp32
        let accumulate: () -> Void
        if x.dataType == .fp64 {
            let input = UnsafePointer(x.pointer.assumingMemoryBound(to: Double.self))
            accumulate = { ensemble.accumulate(input, rows: rows, stride: columns, into: scores) }
        } else {
            let input = UnsafePointer(x.floats())
            accumulate = { ensemble.accumulate(input, rows: rows, stride: columns, into: scores) }
        }
        switch kind {
        case .regressor:
            let y = outputs[0].floats()
            return {
                _ = scratch
                accumulate()
                ensemble.finishRegression(scores, rows: rows, single: single, into: y)
            }
        case .classifier(let rules):
            let (labels, z) = (outputs[0].int64s(), outputs[1].floats())
            return {
                _ = scratch
                accumulate()
                ensemble.finishClassification(scores, rows: rows, single: single, rules: rules, labels: labels, into: z)
            }
        }
    }
}
