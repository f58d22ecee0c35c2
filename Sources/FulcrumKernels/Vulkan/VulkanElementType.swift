/// How a tensor's elements are laid out in a device buffer (`VulkanBuffer` counts 4-byte
/// words): FP32 and INT32 one word per element; INT64 two words, low word first (exactly the
/// host's little-endian bytes); BOOL one word per element, 0 or 1 (the runtime converts the
/// host's one-byte bools at the boundary).
public enum VulkanElementType: Sendable, Hashable, CaseIterable {
    /// IEEE-754 binary32, one word.
    case float32
    /// Two's complement 32-bit integer, one word.
    case int32
    /// Two's complement 64-bit integer, two words (low, high).
    case int64
    /// One word, 0 (false) or 1 (true); kernels read any nonzero word as true.
    case bool

    /// 4-byte words per element (int64: 2, others 1).
    public var words: Int { self == .int64 ? 2 : 1 }

    /// The code the shaders use (0 float32, 1 int32, 2 int64, 3 bool).
    var code: UInt32 {
        switch self {
        case .float32: 0
        case .int32: 1
        case .int64: 2
        case .bool: 3
        }
    }
}

/// The comparisons `VulkanRecording.compare` records (ONNX Equal, Less, Greater).
public enum VulkanComparison: Sendable, Hashable, CaseIterable {
    /// `a == b` (false when either is NaN).
    case equal
    /// `a < b`.
    case less
    /// `a > b`.
    case greater
}
