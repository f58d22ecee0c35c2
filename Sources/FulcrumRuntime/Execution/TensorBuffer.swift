/// A block of tensor memory, 64-byte aligned and zero-filled, freed when the last reference goes.
///
/// Execution plans allocate every buffer once per batch shape and reuse it for every batch, so
/// the hot path never allocates. `@unchecked Sendable`: constant buffers (initializers) are
/// written only while the model loads and are read-only afterwards, so sharing them between
/// model instances is safe; scratch buffers belong to one `ModelInstance`, which callers
/// serialise.
final class TensorBuffer: @unchecked Sendable {
    /// The start of the memory.
    let pointer: UnsafeMutableRawPointer
    /// The usable size in bytes.
    let byteCount: Int

    /// Allocates `byteCount` zeroed bytes (at least one byte is allocated, so `pointer` is valid).
    init(byteCount: Int) {
        self.byteCount = byteCount
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
    }

    /// Allocates a buffer holding a copy of `bytes`.
    convenience init(bytes: [UInt8]) {
        self.init(byteCount: bytes.count)
        bytes.withUnsafeBytes { raw in
            if let base = raw.baseAddress { pointer.copyMemory(from: base, byteCount: raw.count) }
        }
    }

    deinit { pointer.deallocate() }
}
