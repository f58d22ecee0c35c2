import FulcrumKernels

/// Identity: copies its input (any fixed-size type).
struct IdentityOperator: Operator {
    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "input")
        guard x.dataType.byteSize != nil else {
            throw RuntimeError(code: .unsupportedOperator, message: "type \(x.dataType.rawValue) is not supported")
        }
        return [x]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let input = UnsafeRawPointer(inputs[0]!.pointer)
        let out = outputs[0].pointer
        let bytes = outputs[0].elementCount * (outputs[0].dataType.byteSize ?? 0)
        return { out.copyMemory(from: input, byteCount: bytes) }
    }
}
