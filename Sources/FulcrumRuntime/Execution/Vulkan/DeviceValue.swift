import FulcrumKernels
import FulcrumSchema

/// A value of a plan bound for a Vulkan device: its concrete type and the device buffer holding
/// it (views share their root's buffer). Values known while binding (initializers, shape
/// computations) also keep their host copy, which operators read for shape-like inputs.
struct DeviceValue {
    var dataType: DataType
    var shape: [Int]
    var buffer: VulkanBuffer
    /// The host contents when the value is static (known before any batch runs).
    var host: BoundValue?

    var elementCount: Int { shape.reduce(1, *) }

    /// How the elements sit in device memory (`nil`: not a type the device handles).
    var elementType: VulkanElementType? { dataType.deviceElementType }

    /// 4-byte words per element.
    var wordsPerElement: Int { elementType?.words ?? 1 }

    /// The known integer contents (shape-like inputs), when static.
    func integers() -> [Int]? { host?.integers() }
}

extension DataType {
    /// The device layout of this type: FP32 and INT32 one word, INT64 two, BOOL one word (0/1);
    /// nil for types the Vulkan backend does not hold.
    var deviceElementType: VulkanElementType? {
        switch self {
        case .fp32: .float32
        case .int32: .int32
        case .int64: .int64
        case .bool: .bool
        default: nil
        }
    }

    /// Device words for `count` elements (nil for types the device does not hold).
    func deviceWords(_ count: Int) -> Int? { deviceElementType.map { $0.words * count } }
}

/// Moving tensor bytes between host layout and device words (BOOL is one byte on the host and
/// one word on the device; every other supported type has the same bytes on both).
enum DeviceLayout {
    /// Writes `count` elements of `dataType` from host memory into device-layout memory.
    static func pack(_ source: UnsafeRawPointer, _ dataType: DataType, count: Int, into words: UnsafeMutableRawPointer) {
        if dataType == .bool {
            let out = words.assumingMemoryBound(to: UInt32.self)
            for i in 0..<count { out[i] = source.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
        } else {
            words.copyMemory(from: source, byteCount: count * (dataType.byteSize ?? 0))
        }
    }

    /// Writes `count` elements of `dataType` from device-layout memory into host memory.
    static func unpack(_ words: UnsafeRawPointer, _ dataType: DataType, count: Int, into destination: UnsafeMutableRawPointer) {
        if dataType == .bool {
            for i in 0..<count {
                destination.storeBytes(of: words.load(fromByteOffset: i * 4, as: UInt32.self) != 0 ? 1 : 0, toByteOffset: i, as: UInt8.self)
            }
        } else {
            destination.copyMemory(from: words, byteCount: count * (dataType.byteSize ?? 0))
        }
    }

    /// A device buffer holding `count` elements of host memory `source` (weights and other
    /// values known before any batch: uploaded once).
    static func upload(_ source: UnsafeRawPointer, _ dataType: DataType, count: Int, device: VulkanDevice) throws -> VulkanBuffer {
        let words = dataType.deviceWords(count) ?? 0
        let buffer = try VulkanBuffer(device: device, count: max(words, 1))
        guard words > 0 else { return buffer }
        let staged = UnsafeMutableRawPointer.allocate(byteCount: words * 4, alignment: 16)
        defer { staged.deallocate() }
        pack(source, dataType, count: count, into: staged)
        try buffer.upload(bytes: UnsafeRawBufferPointer(start: staged, count: words * 4))
        return buffer
    }
}
