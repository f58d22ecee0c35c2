import Foundation

/// A forest of decision trees (ONNX's `ai.onnx.ml` tree ensembles: XGBoost, LightGBM and
/// scikit-learn exports), laid out for evaluation.
///
/// Layout: every tree's nodes in one flat array of 24-byte records, each tree's nodes in
/// depth-first order from its root so a path mostly walks forward in memory; a leaf keeps its
/// weights' range (or, with one output, their sum) in the record, so the walk needs no lookup.
/// Evaluation is batch-major: tree by tree, every row of the batch walks the same tree while its
/// nodes are in cache, adding its leaf's weights into that row's accumulators.
///
/// Scores follow onnxruntime's arithmetic and its rules for classifiers (which exporters are
/// written against): sums in the input's precision, tree by tree in the model's order (as
/// onnxruntime sums in its threshold type, which follows the input type: FP32 input, FP32
/// sums), base values, the binary-class conventions, then the post transform in `Float`.
/// Sums are kept in `Double` and rounded to `Float` after every operation for FP32 inputs,
/// which gives exactly the `Float` result (a double holds more than twice a float's digits).
public struct TreeEnsemble: Sendable {
    /// How a branch node compares the feature `x` with its threshold `t` (true: go to the true child).
    public enum Mode: UInt8, Sendable {
        case lessOrEqual, less, greaterOrEqual, greater, equal, notEqual, member, leaf

        /// The names of `nodes_modes` in TreeEnsembleRegressor/Classifier.
        public init?(name: String) {
            switch name {
            case "BRANCH_LEQ": self = .lessOrEqual
            case "BRANCH_LT": self = .less
            case "BRANCH_GTE": self = .greaterOrEqual
            case "BRANCH_GT": self = .greater
            case "BRANCH_EQ": self = .equal
            case "BRANCH_NEQ": self = .notEqual
            case "BRANCH_MEMBER": self = .member
            case "LEAF": self = .leaf
            default: return nil
            }
        }
    }

    public enum Aggregate: Sendable { case sum, average, minimum, maximum }

    public typealias PostTransform = ScoreTransform

    /// The nodes of every tree as ONNX lists them: tuples spread over parallel arrays.
    public struct Description: Sendable {
        public var treeIDs: [Int] = []
        public var nodeIDs: [Int] = []
        public var featureIDs: [Int] = []
        public var modes: [Mode] = []
        public var thresholds: [Double] = []
        public var trueNodeIDs: [Int] = []
        public var falseNodeIDs: [Int] = []
        /// Empty, or one per node: a missing (NaN) feature goes to the true child.
        public var missingGoesTrue: [Bool] = []
        /// For `member` nodes: the set of values, per node index (others empty).
        public var memberSets: [Int: Set<Double>] = [:]
        /// The leaves' weights: (tree, node) → (output index, weight), in any order.
        public var weightTreeIDs: [Int] = []
        public var weightNodeIDs: [Int] = []
        public var weightOutputs: [Int] = []
        public var weights: [Double] = []
        public var outputCount = 1
        public var aggregate = Aggregate.sum
        public var baseValues: [Double] = []
        public var postTransform = PostTransform.none

        public init() {}
    }

    /// One node. Branch: `threshold`, `feature`, children. Leaf: `first`/`count` of its weights
    /// in `weightOutputs`/`weightValues`, and their sum in `threshold` for one-output models.
    struct Node {
        var threshold: Double
        var feature: Int32
        var trueChild: Int32
        var falseChild: Int32
        var mode: Mode
        var missingGoesTrue: Bool
        /// Index into `memberSets` for `member` nodes.
        var memberSet: UInt16
    }

    /// A node of the compact layout. The true child of a branch is the next node (depth-first
    /// order); `next` is the false child, or for a leaf the index of its `Node`.
    struct CompactNode {
        var threshold: Float
        var feature: UInt32
        var next: UInt32
        /// Bit 0: leaf; bit 1: a missing (NaN) feature goes to the true child.
        var flags: UInt8
    }

    let nodes: [Node]
    /// The same trees in 16 bytes a node, for the common case: FP32 thresholds, one comparison
    /// for every branch (LEQ, LT, GTE or GT, as exporters write them). nil otherwise.
    let compact: [CompactNode]?
    /// The comparison every branch of `compact` makes.
    let compactMode: Mode
    let roots: [Int32]
    /// Each tree's depth: the steps a walk from its root takes at most.
    let depths: [Int32]
    let weightOutputs: [Int32]
    let weightValues: [Double]
    let memberSets: [Set<Double>]
    public let outputCount: Int
    /// Columns the input must have (the largest feature index + 1).
    public let featureCount: Int
    public let aggregate: Aggregate
    public let baseValues: [Double]
    public let postTransform: PostTransform
    /// Trees, nodes and weights in the model (for logs and checks).
    public var treeCount: Int { roots.count }
    public var nodeCount: Int { nodes.count }

    /// Refusals of a malformed ensemble (the model file is outside input: every index is checked).
    public struct Malformed: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The largest ensemble accepted: 2²⁴ nodes (a 500-tree depth-12 forest has 4 million).
    public static let maximumNodes = 1 << 24

    public init(_ d: Description) throws(Malformed) {
        func bad(_ text: String) -> Malformed { Malformed(description: text) }
        let n = d.nodeIDs.count
        guard n > 0 else { throw bad("the ensemble has no nodes") }
        guard n <= Self.maximumNodes else { throw bad("\(n) nodes is more than the \(Self.maximumNodes) accepted") }
        for (name, count) in [("nodes_treeids", d.treeIDs.count), ("nodes_featureids", d.featureIDs.count), ("nodes_modes", d.modes.count),
                              ("nodes_values", d.thresholds.count), ("nodes_truenodeids", d.trueNodeIDs.count), ("nodes_falsenodeids", d.falseNodeIDs.count)]
        where count != n {
            throw bad("\(name) has \(count) entries, nodes_nodeids \(n): the node attributes must have one entry per node")
        }
        guard d.missingGoesTrue.isEmpty || d.missingGoesTrue.count == n else {
            throw bad("nodes_missing_value_tracks_true has \(d.missingGoesTrue.count) entries for \(n) nodes")
        }
        let w = d.weights.count
        guard d.weightTreeIDs.count == w, d.weightNodeIDs.count == w, d.weightOutputs.count == w else {
            throw bad("the leaf weight attributes (tree ids \(d.weightTreeIDs.count), node ids \(d.weightNodeIDs.count), output ids \(d.weightOutputs.count), weights \(w)) differ in length")
        }
        guard d.outputCount >= 1, d.outputCount <= 1 << 20 else { throw bad("\(d.outputCount) outputs (targets or classes) is out of range") }
        guard d.baseValues.isEmpty || d.baseValues.count == d.outputCount || d.baseValues.count == 1 else {
            throw bad("\(d.baseValues.count) base values for \(d.outputCount) outputs")
        }

        // (tree, node) → index, and the trees in order of first appearance.
        struct Key: Hashable { var tree: Int, node: Int }
        var index: [Key: Int] = [:]
        index.reserveCapacity(n)
        var treeOrder: [Int] = []
        var seenTrees = Set<Int>()
        for i in 0..<n {
            let key = Key(tree: d.treeIDs[i], node: d.nodeIDs[i])
            guard index.updateValue(i, forKey: key) == nil else { throw bad("tree \(key.tree) defines node \(key.node) twice") }
            if seenTrees.insert(key.tree).inserted { treeOrder.append(key.tree) }
        }
        // Children, checked; a node that is some node's child is not a root.
        var isChild = [Bool](repeating: false, count: n)
        var children = [(Int, Int)](repeating: (-1, -1), count: n)
        var maxFeature = -1
        for i in 0..<n where d.modes[i] != .leaf {
            let tree = d.treeIDs[i]
            guard let t = index[Key(tree: tree, node: d.trueNodeIDs[i])], let f = index[Key(tree: tree, node: d.falseNodeIDs[i])] else {
                throw bad("node \(d.nodeIDs[i]) of tree \(tree) names a child (\(d.trueNodeIDs[i]) or \(d.falseNodeIDs[i])) that tree does not have")
            }
            guard d.featureIDs[i] >= 0, d.featureIDs[i] < 1 << 24 else { throw bad("node \(d.nodeIDs[i]) of tree \(tree) reads feature \(d.featureIDs[i])") }
            guard !d.thresholds[i].isNaN else { throw bad("node \(d.nodeIDs[i]) of tree \(tree) has a NaN threshold") }
            if d.modes[i] == .member, d.memberSets[i] == nil { throw bad("BRANCH_MEMBER node \(d.nodeIDs[i]) of tree \(tree) has no member set") }
            children[i] = (t, f)
            isChild[t] = true
            isChild[f] = true
            maxFeature = max(maxFeature, d.featureIDs[i])
        }
        // Leaf weights, grouped by leaf.
        var leafWeights = [[(Int32, Double)]](repeating: [], count: n)
        for k in 0..<w {
            guard let leaf = index[Key(tree: d.weightTreeIDs[k], node: d.weightNodeIDs[k])] else {
                throw bad("a weight names node \(d.weightNodeIDs[k]) of tree \(d.weightTreeIDs[k]), which does not exist")
            }
            guard d.modes[leaf] == .leaf else { throw bad("a weight names node \(d.weightNodeIDs[k]) of tree \(d.weightTreeIDs[k]), which is not a LEAF") }
            guard d.weightOutputs[k] >= 0, d.weightOutputs[k] < d.outputCount else {
                throw bad("a weight of node \(d.weightNodeIDs[k]) of tree \(d.weightTreeIDs[k]) is for output \(d.weightOutputs[k]), outside 0..<\(d.outputCount)")
            }
            leafWeights[leaf].append((Int32(d.weightOutputs[k]), d.weights[k]))
        }

        // Lay each tree out depth-first from its root; a node reached twice (a cycle or a
        // shared subtree) is refused, so every walk ends at a leaf within the tree's size.
        var rootOf: [Int: Int] = [:]
        for i in 0..<n where !isChild[i] {
            guard rootOf.updateValue(i, forKey: d.treeIDs[i]) == nil else {
                throw bad("tree \(d.treeIDs[i]) has more than one root (nodes no other node points to)")
            }
        }
        var position = [Int32](repeating: -1, count: n)
        var order: [Int] = []
        order.reserveCapacity(n)
        var roots: [Int32] = []
        var stack: [Int] = []
        for tree in treeOrder {
            guard let root = rootOf[tree] else { throw bad("tree \(tree) has no root: its nodes form a cycle") }
            roots.append(Int32(order.count))
            stack.append(root)
            while let i = stack.popLast() {
                guard position[i] < 0 else { throw bad("node \(d.nodeIDs[i]) of tree \(tree) is reached twice: a tree's nodes must form a tree") }
                position[i] = Int32(order.count)
                order.append(i)
                if d.modes[i] != .leaf {
                    stack.append(children[i].1)
                    stack.append(children[i].0)  // the true child next: walked first
                }
            }
        }
        guard order.count == n else { throw bad("\(n - order.count) nodes are not reachable from their tree's root") }

        var sets: [Set<Double>] = []
        var laid: [Node] = []
        laid.reserveCapacity(n)
        var outputs: [Int32] = []
        var values: [Double] = []
        for i in order {
            let missing = d.missingGoesTrue.isEmpty ? false : d.missingGoesTrue[i]
            if d.modes[i] == .leaf {
                let first = outputs.count
                for (output, value) in leafWeights[i] {
                    outputs.append(output)
                    values.append(value)
                }
                let sum = leafWeights[i].reduce(0.0) { $0 + $1.1 }
                laid.append(Node(threshold: sum, feature: 0, trueChild: Int32(first), falseChild: Int32(leafWeights[i].count), mode: .leaf, missingGoesTrue: false, memberSet: 0))
            } else {
                var set: UInt16 = 0
                if d.modes[i] == .member, let members = d.memberSets[i] {
                    guard sets.count < Int(UInt16.max) else { throw bad("more than \(UInt16.max) BRANCH_MEMBER sets") }
                    set = UInt16(sets.count)
                    sets.append(members)
                }
                laid.append(Node(
                    threshold: d.thresholds[i], feature: Int32(d.featureIDs[i]),
                    trueChild: position[children[i].0], falseChild: position[children[i].1],
                    mode: d.modes[i], missingGoesTrue: missing, memberSet: set))
            }
        }
        nodes = laid
        let branchModes = Set(laid.lazy.filter { $0.mode != .leaf }.map(\.mode))
        let uniform = branchModes.count <= 1 ? (branchModes.first ?? .lessOrEqual) : .member
        let floatExact = laid.allSatisfy { $0.mode == .leaf || Double(Float($0.threshold)) == $0.threshold }
        if [.lessOrEqual, .less, .greaterOrEqual, .greater].contains(uniform), floatExact {
            compact = laid.enumerated().map { index, node in
                // A leaf points at itself with a NaN threshold (every comparison false): a walk
                // that has arrived stays, so lanes can take a fixed number of steps.
                node.mode == .leaf
                    ? CompactNode(threshold: .nan, feature: 0, next: UInt32(index), flags: 1)
                    : CompactNode(threshold: Float(node.threshold), feature: UInt32(node.feature), next: UInt32(node.falseChild), flags: node.missingGoesTrue ? 2 : 0)
            }
        } else {
            compact = nil
        }
        compactMode = uniform
        // Each tree's depth (steps from its root to its deepest leaf), from the depth-first layout.
        var depths: [Int32] = []
        for (t, root) in roots.enumerated() {
            let end = t + 1 < roots.count ? Int(roots[t + 1]) : laid.count
            var level = [Int32](repeating: 0, count: end - Int(root))
            var deepest: Int32 = 0
            for i in Int(root)..<end where laid[i].mode != .leaf {
                let l = level[i - Int(root)] + 1
                level[Int(laid[i].trueChild) - Int(root)] = l
                level[Int(laid[i].falseChild) - Int(root)] = l
                deepest = max(deepest, l)
            }
            depths.append(deepest)
        }
        self.depths = depths
        self.roots = roots
        weightOutputs = outputs
        weightValues = values
        memberSets = sets
        outputCount = d.outputCount
        featureCount = maxFeature + 1
        aggregate = d.aggregate
        baseValues = d.baseValues
        postTransform = d.postTransform
    }

    // MARK: - Walking

    /// The leaf `row` reaches in the tree whose root is at `root`.
    @inline(__always)
    static func leaf<T: BinaryFloatingPoint>(_ nodes: UnsafePointer<Node>, _ root: Int32, _ row: UnsafePointer<T>, _ sets: [Set<Double>]) -> Int {
        var i = Int(root)
        while true {
            let node = nodes[i]
            let x = Double(row[Int(node.feature)])
            let t = node.threshold
            let goTrue: Bool
            switch node.mode {
            case .lessOrEqual: goTrue = x <= t
            case .less: goTrue = x < t
            case .greaterOrEqual: goTrue = x >= t
            case .greater: goTrue = x > t
            case .equal: goTrue = x == t
            case .notEqual: goTrue = x != t
            case .member: goTrue = sets[Int(node.memberSet)].contains(x)
            case .leaf: return i
            }
            i = Int(goTrue || (node.missingGoesTrue && x.isNaN) ? node.trueChild : node.falseChild)
        }
    }

    /// Accumulators of one row and output: the value and whether any leaf gave one (onnxruntime
    /// treats outputs no leaf touched differently from outputs that sum to zero).
    public struct Score: Sendable {
        public var value = 0.0
        public var present = false
        public init() {}
    }

    /// Adds every tree's leaf weights into `scores` (`rows × outputCount`, reset first), for a
    /// row-major FP32 input with `stride` columns (at least `featureCount`), in FP32 arithmetic.
    public func accumulate(_ input: UnsafePointer<Float>, rows: Int, stride: Int, into scores: UnsafeMutablePointer<Score>) {
        guard let compact else { return accumulateGeneral(input, rows: rows, stride: stride, into: scores, single: true) }
        switch compactMode {
        case .less: accumulateCompact(compact, Less.self, input, rows: rows, stride: stride, into: scores)
        case .greaterOrEqual: accumulateCompact(compact, GreaterOrEqual.self, input, rows: rows, stride: stride, into: scores)
        case .greater: accumulateCompact(compact, Greater.self, input, rows: rows, stride: stride, into: scores)
        default: accumulateCompact(compact, LessOrEqual.self, input, rows: rows, stride: stride, into: scores)
        }
    }

    /// The same for an FP64 input, in FP64 arithmetic.
    public func accumulate(_ input: UnsafePointer<Double>, rows: Int, stride: Int, into scores: UnsafeMutablePointer<Score>) {
        accumulateGeneral(input, rows: rows, stride: stride, into: scores, single: false)
    }

    /// The walk and the sums for any node modes and threshold precision.
    private func accumulateGeneral<T: BinaryFloatingPoint>(
        _ input: UnsafePointer<T>, rows: Int, stride: Int, into scores: UnsafeMutablePointer<Score>, single: Bool
    ) {
        nodes.withUnsafeBufferPointer { nodeBuffer in
            let base = nodeBuffer.baseAddress!
            accumulateLeaves(rows: rows, into: scores, single: single) { root, row in
                Self.leaf(base, root, input + row * stride, memberSets)
            }
        }
    }

    /// The walk for the compact layout: one comparison per level, no switch, and `lanes`
    /// independent walks interleaved (a walk is a chain of dependent loads; several chains keep
    /// the core busy): eight rows through one tree, or for fewer rows, eight trees for one row.
    /// Leaves loop on themselves, so every lane takes the group's largest depth in steps and the
    /// loop has no data-dependent branch.
    private func accumulateCompact<C: Comparison>(
        _ compact: [CompactNode], _: C.Type, _ input: UnsafePointer<Float>, rows: Int, stride: Int, into scores: UnsafeMutablePointer<Score>
    ) {
        let outputs = outputCount
        scores.update(repeating: Score(), count: rows * outputs)
        compact.withUnsafeBufferPointer { buffer in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: Self.lanes) { index in
                withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: Self.lanes) { row in
                    let base = buffer.baseAddress!
                    let index = index.baseAddress!
                    let row = row.baseAddress!
                    // One step of lane k, without a branch: true child (the next node) or `next`.
                    @inline(__always) func step(_ k: Int) {
                        let at = index[k]
                        let node = base[at]
                        let value = row[k][Int(node.feature)]
                        let holds: Int = C.holds(value, node.threshold) ? 1 : 0
                        let missing: Int = value.isNaN ? Int(node.flags >> 1) : 0
                        let next = Int(node.next)
                        index[k] = next &+ ((holds | missing) & 1) &* (at &+ 1 &- next)
                    }
                    @inline(__always) func walk(_ count: Int, steps: Int32) {
                        if count == Self.lanes {
                            for _ in 0..<steps { for k in 0..<Self.lanes { step(k) } }
                        } else {
                            for _ in 0..<steps { for k in 0..<count { step(k) } }
                        }
                    }
                    if rows >= Self.lanes {
                        for (t, root) in roots.enumerated() {
                            for first in Swift.stride(from: 0, to: rows, by: Self.lanes) {
                                let count = min(Self.lanes, rows - first)
                                for k in 0..<count {
                                    index[k] = Int(root)
                                    row[k] = input + (first + k) * stride
                                }
                                walk(count, steps: depths[t])
                                for k in 0..<count { add(leaf: index[k], to: scores + (first + k) * outputs) }
                            }
                        }
                    } else {
                        for r in 0..<rows {
                            for first in Swift.stride(from: 0, to: roots.count, by: Self.lanes) {
                                let count = min(Self.lanes, roots.count - first)
                                var steps: Int32 = 0
                                for k in 0..<count {
                                    index[k] = Int(roots[first + k])
                                    row[k] = input + r * stride
                                    steps = max(steps, depths[first + k])
                                }
                                walk(count, steps: steps)
                                // In tree order, as onnxruntime sums.
                                for k in 0..<count { add(leaf: index[k], to: scores + r * outputs) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Walks interleaved by `accumulateCompact`.
    static let lanes = 8

    /// Adds the weights of leaf `leaf` (an index in `nodes`) to one row's scores, in FP32.
    @inline(__always)
    private func add(leaf: Int, to row: UnsafeMutablePointer<Score>) {
        nodes.withUnsafeBufferPointer { nodes in
            let node = nodes[leaf]
            if outputCount == 1 {
                combine(&row[0], node.threshold, always: true, single: true)
                return
            }
            weightOutputs.withUnsafeBufferPointer { weightOutput in
                weightValues.withUnsafeBufferPointer { weightValue in
                    for k in Int(node.trueChild)..<Int(node.trueChild + node.falseChild) {
                        combine(&row[Int(weightOutput[k])], weightValue[k], always: false, single: true)
                    }
                }
            }
        }
    }

    /// Tree by tree, every row: `leafOf(root, row)` gives the index (in `nodes`) of the leaf the
    /// row reaches; its weights go into the row's scores.
    @inline(__always)
    private func accumulateLeaves(rows: Int, into scores: UnsafeMutablePointer<Score>, single: Bool, _ leafOf: (Int32, Int) -> Int) {
        let outputs = outputCount
        scores.update(repeating: Score(), count: rows * outputs)
        nodes.withUnsafeBufferPointer { nodeBuffer in
            weightOutputs.withUnsafeBufferPointer { weightOutput in
                weightValues.withUnsafeBufferPointer { weightValue in
                    let base = nodeBuffer.baseAddress!
                    for root in roots {
                        for r in 0..<rows {
                            let leaf = base[leafOf(root, r)]
                            let row = scores + r * outputs
                            if outputs == 1 {
                                // One output: the leaf's weights are summed already (a leaf without weights adds 0).
                                combine(&row[0], leaf.threshold, always: true, single: single)
                            } else {
                                for k in Int(leaf.trueChild)..<Int(leaf.trueChild + leaf.falseChild) {
                                    combine(&row[Int(weightOutput[k])], weightValue[k], always: false, single: single)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `x` rounded to `Float` when the arithmetic is single precision.
    @inline(__always)
    static func rounded(_ x: Double, _ single: Bool) -> Double { single ? Double(Float(x)) : x }

    @inline(__always)
    private func combine(_ score: inout Score, _ value: Double, always: Bool, single: Bool) {
        switch aggregate {
        case .sum, .average:
            score.value = Self.rounded(score.value + value, single)
            if !always { score.present = true }
        case .minimum:
            score.value = score.present && score.value <= value ? score.value : value
            score.present = true
        case .maximum:
            score.value = score.present && score.value >= value ? score.value : value
            score.present = true
        }
    }

    /// A branch comparison, for the compact walk's specialisations.
    protocol Comparison { static func holds(_ x: Float, _ t: Float) -> Bool }
    enum LessOrEqual: Comparison { @inline(__always) static func holds(_ x: Float, _ t: Float) -> Bool { x <= t } }
    enum Less: Comparison { @inline(__always) static func holds(_ x: Float, _ t: Float) -> Bool { x < t } }
    enum GreaterOrEqual: Comparison { @inline(__always) static func holds(_ x: Float, _ t: Float) -> Bool { x >= t } }
    enum Greater: Comparison { @inline(__always) static func holds(_ x: Float, _ t: Float) -> Bool { x > t } }

    // MARK: - Regression

    /// Writes `rows × outputCount` values from accumulated scores (TreeEnsembleRegressor,
    /// TreeEnsemble); `single`: the input was FP32 (as for `accumulate`).
    public func finishRegression(_ scores: UnsafeMutablePointer<Score>, rows: Int, single: Bool, into output: UnsafeMutablePointer<Float>) {
        let outputs = outputCount
        func p(_ x: Double) -> Double { Self.rounded(x, single) }
        let trees = Double(max(roots.count, 1))
        for r in 0..<rows {
            let row = scores + r * outputs
            let out = output + r * outputs
            if outputs == 1 {
                // onnxruntime's one-output path: a single base value (or none), PROBIT only.
                let origin = baseValues.count == 1 ? baseValues[0] : 0
                var value = row[0].value
                switch aggregate {
                case .sum: value = p(value + origin)
                case .average: value = p(p(value / trees) + origin)
                case .minimum, .maximum: value = p((row[0].present ? value : 0) + origin)
                }
                out[0] = postTransform == .probit ? Self.probit(Float(value)) : Float(value)
                continue
            }
            let useBase = baseValues.count == outputs
            for j in 0..<outputs {
                let base = useBase ? baseValues[j] : 0
                switch aggregate {
                case .sum: row[j].value = p(row[j].value + base)
                case .average: row[j].value = p(p(row[j].value / trees) + base)
                case .minimum, .maximum:
                    // An output no leaf touched stays absent (written as 0), base value or not.
                    row[j].value = p(base + (row[j].present ? row[j].value : 0))
                }
            }
            Self.transform(row, count: outputs, postTransform, into: out)
        }
    }

    // MARK: - Classification

    /// How the class labels and scores are formed (fixed per model, as onnxruntime fixes them).
    public struct ClassifierRules: Sendable {
        public var labels: [Int64]
        /// Two classes and every weight for the same class: one score decides both.
        public var binary: Bool
        public var weightsAllPositive: Bool

        public init(labels: [Int64], weightClasses: Set<Int>, weightsAllPositive: Bool) {
            self.labels = labels
            binary = labels.count == 2 && weightClasses.count == 1
            self.weightsAllPositive = weightsAllPositive
        }
    }

    /// Writes labels (`rows`) and probabilities or scores (`rows × outputCount`) from
    /// accumulated scores (TreeEnsembleClassifier).
    public func finishClassification(
        _ scores: UnsafeMutablePointer<Score>, rows: Int, single: Bool, rules: ClassifierRules,
        labels: UnsafeMutablePointer<Int64>, into output: UnsafeMutablePointer<Float>
    ) {
        let classes = outputCount
        func p(_ x: Double) -> Double { Self.rounded(x, single) }
        for r in 0..<rows {
            let row = scores + r * classes
            let out = output + r * classes
            if classes > 2 {
                for k in 0..<min(baseValues.count, classes) {
                    if row[k].present { row[k].value = p(row[k].value + baseValues[k]) } else { row[k] = Score(); row[k].value = baseValues[k]; row[k].present = true }
                }
                var best = -1
                for k in 0..<classes where row[k].present && (best < 0 || row[k].value > row[best].value) { best = k }
                labels[r] = best >= 0 ? rules.labels[best] : rules.labels[0]
                Self.transform(row, count: classes, postTransform, into: out)
                continue
            }
            // Two classes (classes == 2; one-class classifiers are refused at load).
            var count = 2
            var mode = -1  // how the second score is made from the first when only one remains
            if baseValues.count == 2 {
                if row[1].present {
                    // onnxruntime: base_values[0] is ignored here, assumed equal to base_values[1].
                    row[1].value = p(baseValues[1] + row[0].value)
                    row[0].value = -row[1].value
                } else {
                    row[1].value = p(row[1].value + baseValues[1])
                    row[0].value = p(row[0].value + baseValues[0])
                }
            } else if baseValues.count == 1 {
                row[0].value = p(row[0].value + baseValues[0])
                if !row[1].present { count = 1 }
            } else {
                mode = 3
                if !row[1].present { count = 1 }
            }
            let positive = count == 2 && row[1].present ? row[1].value : (row[0].present ? row[0].value : 0)
            if rules.binary {
                if rules.weightsAllPositive {
                    (labels[r], mode) = positive > 0.5 ? (rules.labels[1], 0) : (rules.labels[0], 1)
                } else {
                    (labels[r], mode) = positive > 0 ? (rules.labels[1], 2) : (rules.labels[0], 3)
                }
            } else {
                // onnxruntime answers 1 or 0 here, not the model's labels.
                labels[r] = positive > 0 ? 1 : 0
            }
            if count == 2 {
                Self.transform(row, count: 2, postTransform, into: out)
                continue
            }
            let s = row[0].present ? row[0].value : 0
            if postTransform == .probit {
                out[0] = Self.probit(Float(s))
                out[1] = 0
                continue
            }
            switch mode {
            case 0, 1:
                out[0] = Float(1 - s)
                out[1] = Float(s)
            case 2, 3:
                if postTransform == .logistic {
                    out[0] = Self.logistic(Float(-s))
                    out[1] = Self.logistic(Float(s))
                } else {
                    out[0] = Float(-s)
                    out[1] = Float(s)
                }
            default:
                out[0] = Float(s)
                out[1] = 0
            }
        }
    }

    // MARK: - Transforms

    static func transform(_ row: UnsafeMutablePointer<Score>, count: Int, _ post: PostTransform, into out: UnsafeMutablePointer<Float>) {
        for j in 0..<count { out[j] = row[j].present ? Float(row[j].value) : 0 }
        post.apply(to: out, count: count)
    }

    static func logistic(_ x: Float) -> Float { ScoreTransform.logistic(x) }
    static func probit(_ x: Float) -> Float { ScoreTransform.probit(x) }
}
