import FulcrumSchema

/// The type of a value in an execution plan: element type and shape, as far as known.
///
/// At load `shape` may hold -1 for dimensions only known per batch (the batch dimension,
/// `dim_param`s) and is `nil` when even the rank is unknown; when a plan is bound to a batch
/// every shape is concrete. `values` holds the contents of a small integer tensor whose value is
/// known while planning (an initializer, a folded constant, or a shape computed from the bound
/// input shapes): operators such as Reshape, Slice, Expand or TopK read their shape-like inputs
/// from it.
struct ValueType: Sendable, Equatable, CustomStringConvertible {
    var dataType: DataType
    var shape: [Int]?
    /// The elements of an INT64/INT32/BOOL tensor known at planning time (row-major), if any.
    var values: [Int]? = nil
    /// The elements of a small FP32/FP64 tensor known at planning time (Resize's scales).
    var reals: [Double]? = nil

    init(dataType: DataType, shape: [Int]?, values: [Int]? = nil) {
        self.dataType = dataType
        self.shape = shape
        self.values = values
    }

    /// Whether every dimension is known.
    var isConcrete: Bool { shape.map { $0.allSatisfy { $0 >= 0 } } ?? false }

    /// Element count of a concrete shape; `nil` when unknown.
    var elementCount: Int? {
        guard isConcrete, let shape else { return nil }
        return shape.reduce(1, *)
    }

    /// The rank, when known.
    var rank: Int? { shape?.count }

    /// The same type without known values (an operator's output type usually).
    var withoutValues: ValueType { ValueType(dataType: dataType, shape: shape) }

    /// A bound value's type with its contents when small (what `inferTypes` saw while planning,
    /// for operators that re-read shape-like inputs at bind time).
    init(known value: BoundValue) {
        self.init(dataType: value.dataType, shape: value.shape)
        learn(value)
    }

    /// Fills `values` or `reals` from a small constant's bytes.
    mutating func learn(_ value: BoundValue) {
        guard value.elementCount <= Self.maximumKnownValues else { return }
        values = value.integers()
        reals = value.reals()
    }

    /// The largest integer tensor whose contents planning keeps in `values`.
    static let maximumKnownValues = 4096

    /// e.g. `FP32[-1, 4]` or `FP32[?]`.
    var description: String {
        guard let shape else { return "\(dataType.rawValue)[?]" }
        return "\(dataType.rawValue)\(shape)"
    }
}
