import FulcrumSchema
import Testing

@Suite("tensors and data types")
struct TensorTests {
    @Test("config names map both ways")
    func configNames() {
        for type in DataType.allCases {
            #expect(DataType(configName: type.configName) == type)
        }
        #expect(DataType(configName: "TYPE_STRING") == .bytes)
        #expect(DataType.bytes.configName == "TYPE_STRING")
        #expect(DataType(configName: "TYPE_BYTES") == nil)
        #expect(DataType(configName: "TYPE_INVALID") == nil)
        #expect(DataType(configName: "FP32") == nil)
        #expect(DataType.bool.byteSize == 1)
        #expect(DataType.fp16.byteSize == 2)
        #expect(DataType.int64.byteSize == 8)
        #expect(DataType.bytes.byteSize == nil)
    }

    @Test("scalars round-trip through little-endian bytes")
    func roundTrip() {
        let floats = Tensor(shape: [2, 2], scalars: [Float(1.5), -2, 0, .infinity])
        #expect(floats.dataType == .fp32)
        #expect(floats.data == [0, 0, 0xC0, 0x3F, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0x80, 0x7F])
        #expect(floats.scalars(as: Float.self) == [1.5, -2, 0, .infinity])
        #expect(floats.elementCount == 4)

        let ints = Tensor(shape: [3], scalars: [Int64(-1), 2, .max])
        #expect(ints.data.count == 24)
        #expect(Array(ints.data.prefix(8)) == [UInt8](repeating: 0xFF, count: 8))
        #expect(ints.scalars(as: Int64.self) == [-1, 2, .max])

        let int32 = Tensor(shape: [2], scalars: [Int32(258), -2])
        #expect(int32.data == [2, 1, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF])

        let bools = Tensor(shape: [3], scalars: [true, false, true])
        #expect(bools.data == [1, 0, 1])
        #expect(Tensor(dataType: .bool, shape: [2], data: [0, 7]).scalars(as: Bool.self) == [false, true])

        let scalar = Tensor(shape: [], scalars: [Double(3.25)])
        #expect(scalar.elementCount == 1)
        #expect(scalar.scalars(as: Double.self) == [3.25])
        #expect(Tensor(shape: [0, 4], scalars: [UInt8]()).elementCount == 0)
        #expect(Tensor(shape: [2], scalars: [UInt16(1), 0xABCD]).data == [1, 0, 0xCD, 0xAB])
    }

    @Test("short data decodes only whole elements")
    func shortData() {
        let tensor = Tensor(dataType: .fp32, shape: [2], data: [0, 0, 0x80, 0x3F, 1])
        #expect(tensor.scalars(as: Float.self) == [1])
        #expect(tensor.expectedByteCount == 8)
        #expect(Tensor(dataType: .bytes, shape: [2], data: []).expectedByteCount == nil)
    }
}
