/// The type of a value in an execution plan: element type and shape, as far as known.
///
/// At load `shape` may hold -1 for dimensions only known per batch (the batch dimension,
/// `dim_param`s) and is `nil` when even the rank is unknown; when a plan is bound to a batch
/// every shape is concrete.
struct ValueType: Sendable, Equatable, CustomStringConvertible {
    var dataType: DataType
    var shape: [Int]?

    /// Whether every dimension is known.
    var isConcrete: Bool { shape.map { $0.allSatisfy { $0 >= 0 } } ?? false }

    /// Element count of a concrete shape; `nil` when unknown.
    var elementCount: Int? {
        guard isConcrete, let shape else { return nil }
        return shape.reduce(1, *)
    }

    /// e.g. `FP32[-1, 4]` or `FP32[?]`.
    var description: String {
        guard let shape else { return "\(dataType.rawValue)[?]" }
        return "\(dataType.rawValue)\(shape)"
    }
}
