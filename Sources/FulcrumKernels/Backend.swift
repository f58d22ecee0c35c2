/// A compute backend: a device plus the kernels that run ONNX operators on it.
///
/// The runtime asks `supports(op:)` while planning a model and refuses a model whose operators no
/// backend implements. Backends are values with no per-call state (scratch memory belongs to
/// the caller's execution plan), so one instance can be shared by every model instance.
/// Every backend is tested against `CPUBackend`, and `CPUBackend` against onnxruntime.
public protocol Backend: Sendable {
    /// A short name for logs and metrics, e.g. `"cpu"`.
    var name: String { get }
    /// Whether this backend implements the ONNX operator `op` (an `op_type` of the default domain).
    func supports(op: String) -> Bool
}
