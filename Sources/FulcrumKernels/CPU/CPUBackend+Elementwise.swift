/// An elementwise operator of two inputs.
public enum BinaryOperator: String, Sendable, CaseIterable {
    /// `a + b` (integers wrap on overflow).
    case add
    /// `a - b` (integers wrap on overflow).
    case sub
    /// `a * b` (integers wrap on overflow).
    case mul
    /// `a / b`; integers truncate toward zero and division by zero gives 0 instead of trapping.
    case div
}

/// A binary elementwise function with a scalar and an 8-lane SIMD form, specialised at compile time.
@usableFromInline
protocol BinaryFunction {
    associatedtype Element: SIMDScalar
    static func scalar(_ a: Element, _ b: Element) -> Element
    static func vector(_ a: SIMD8<Element>, _ b: SIMD8<Element>) -> SIMD8<Element>
    static var vectorised: Bool { get }
}

extension BinaryFunction {
    @inline(__always) static var vectorised: Bool { true }
}

private enum AddFloat: BinaryFunction {
    @inline(__always) static func scalar(_ a: Float, _ b: Float) -> Float { a + b }
    @inline(__always) static func vector(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a + b }
}
private enum SubFloat: BinaryFunction {
    @inline(__always) static func scalar(_ a: Float, _ b: Float) -> Float { a - b }
    @inline(__always) static func vector(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a - b }
}
private enum MulFloat: BinaryFunction {
    @inline(__always) static func scalar(_ a: Float, _ b: Float) -> Float { a * b }
    @inline(__always) static func vector(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a * b }
}
private enum DivFloat: BinaryFunction {
    @inline(__always) static func scalar(_ a: Float, _ b: Float) -> Float { a / b }
    @inline(__always) static func vector(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a / b }
}
private enum AddInt32: BinaryFunction {
    @inline(__always) static func scalar(_ a: Int32, _ b: Int32) -> Int32 { a &+ b }
    @inline(__always) static func vector(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>) -> SIMD8<Int32> { a &+ b }
}
private enum SubInt32: BinaryFunction {
    @inline(__always) static func scalar(_ a: Int32, _ b: Int32) -> Int32 { a &- b }
    @inline(__always) static func vector(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>) -> SIMD8<Int32> { a &- b }
}
private enum MulInt32: BinaryFunction {
    @inline(__always) static func scalar(_ a: Int32, _ b: Int32) -> Int32 { a &* b }
    @inline(__always) static func vector(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>) -> SIMD8<Int32> { a &* b }
}
private enum DivInt32: BinaryFunction {
    @inline(__always) static func scalar(_ a: Int32, _ b: Int32) -> Int32 {
        b == 0 ? 0 : a.dividedReportingOverflow(by: b).partialValue
    }
    @inline(__always) static func vector(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>) -> SIMD8<Int32> { a }
    @inline(__always) static var vectorised: Bool { false }
}

private enum AddInt64: BinaryFunction {
    @inline(__always) static func scalar(_ a: Int64, _ b: Int64) -> Int64 { a &+ b }
    @inline(__always) static func vector(_ a: SIMD8<Int64>, _ b: SIMD8<Int64>) -> SIMD8<Int64> { a &+ b }
}
private enum SubInt64: BinaryFunction {
    @inline(__always) static func scalar(_ a: Int64, _ b: Int64) -> Int64 { a &- b }
    @inline(__always) static func vector(_ a: SIMD8<Int64>, _ b: SIMD8<Int64>) -> SIMD8<Int64> { a &- b }
}
private enum MulInt64: BinaryFunction {
    @inline(__always) static func scalar(_ a: Int64, _ b: Int64) -> Int64 { a &* b }
    @inline(__always) static func vector(_ a: SIMD8<Int64>, _ b: SIMD8<Int64>) -> SIMD8<Int64> { a &* b }
}
private enum DivInt64: BinaryFunction {
    @inline(__always) static func scalar(_ a: Int64, _ b: Int64) -> Int64 {
        b == 0 ? 0 : a.dividedReportingOverflow(by: b).partialValue
    }
    @inline(__always) static func vector(_ a: SIMD8<Int64>, _ b: SIMD8<Int64>) -> SIMD8<Int64> { a }
    @inline(__always) static var vectorised: Bool { false }
}

extension CPUBackend {
    /// `out = a ∘ b` over INT64 with broadcasting as planned by `layout` (shape arithmetic in
    /// exported graphs). Wraps on overflow; division truncates and gives 0 for a zero divisor.
    public func binary(
        _ op: BinaryOperator, _ a: UnsafePointer<Int64>, _ b: UnsafePointer<Int64>,
        _ out: UnsafeMutablePointer<Int64>, layout: BroadcastLayout
    ) {
        switch op {
        case .add: Self.run(AddInt64.self, a, b, out, layout)
        case .sub: Self.run(SubInt64.self, a, b, out, layout)
        case .mul: Self.run(MulInt64.self, a, b, out, layout)
        case .div: Self.run(DivInt64.self, a, b, out, layout)
        }
    }

    /// `out[i] = f(a[i'], b[i''])` with broadcasting as planned by `layout`, for any element
    /// types (comparisons, Pow, ...). Scalar inner loop; `f` is specialised at the call site.
    @inlinable
    public func broadcast<A, B, O>(
        _ a: UnsafePointer<A>, _ b: UnsafePointer<B>, _ out: UnsafeMutablePointer<O>,
        layout: BroadcastLayout, _ f: (A, B) -> O
    ) {
        let total = layout.elementCount
        guard total > 0 else { return }
        let rank = layout.sizes.count
        let n = layout.sizes[rank - 1]
        let sa = layout.stridesA[rank - 1]
        let sb = layout.stridesB[rank - 1]
        var offsetA = 0
        var offsetB = 0
        var offsetOut = 0
        withUnsafeTemporaryAllocation(of: Int.self, capacity: rank) { counter in
            counter.initialize(repeating: 0)
            while offsetOut < total {
                let pa = a + offsetA
                let pb = b + offsetB
                let po = out + offsetOut
                for i in 0..<n { po[i] = f(pa[i * sa], pb[i * sb]) }
                offsetOut += n
                var d = rank - 2
                while d >= 0 {
                    counter[d] += 1
                    offsetA += layout.stridesA[d]
                    offsetB += layout.stridesB[d]
                    if counter[d] < layout.sizes[d] { break }
                    offsetA -= layout.stridesA[d] * layout.sizes[d]
                    offsetB -= layout.stridesB[d] * layout.sizes[d]
                    counter[d] = 0
                    d -= 1
                }
            }
        }
    }

    /// `out = a ∘ b` over FP32 with broadcasting as planned by `layout` (`out` holds
    /// `layout.elementCount` elements). `out` may alias an input whose shape equals the output's.
    public func binary(
        _ op: BinaryOperator, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        _ out: UnsafeMutablePointer<Float>, layout: BroadcastLayout
    ) {
        switch op {
        case .add: Self.run(AddFloat.self, a, b, out, layout)
        case .sub: Self.run(SubFloat.self, a, b, out, layout)
        case .mul: Self.run(MulFloat.self, a, b, out, layout)
        case .div: Self.run(DivFloat.self, a, b, out, layout)
        }
    }

    /// `out = a ∘ b` over INT32 with broadcasting as planned by `layout`. Wraps on overflow;
    /// integer division truncates and gives 0 for a zero divisor (never traps).
    public func binary(
        _ op: BinaryOperator, _ a: UnsafePointer<Int32>, _ b: UnsafePointer<Int32>,
        _ out: UnsafeMutablePointer<Int32>, layout: BroadcastLayout
    ) {
        switch op {
        case .add: Self.run(AddInt32.self, a, b, out, layout)
        case .sub: Self.run(SubInt32.self, a, b, out, layout)
        case .mul: Self.run(MulInt32.self, a, b, out, layout)
        case .div: Self.run(DivInt32.self, a, b, out, layout)
        }
    }

    /// Walks the merged loops of `layout`, running the contiguous inner loop with SIMD.
    @inline(__always)
    private static func run<F: BinaryFunction>(
        _ f: F.Type, _ a: UnsafePointer<F.Element>, _ b: UnsafePointer<F.Element>,
        _ out: UnsafeMutablePointer<F.Element>, _ layout: BroadcastLayout
    ) {
        let total = layout.elementCount
        guard total > 0 else { return }
        let rank = layout.sizes.count
        let n = layout.sizes[rank - 1]
        let innerA = layout.stridesA[rank - 1]
        let innerB = layout.stridesB[rank - 1]
        if rank == 1 {
            inner(f, a, innerA, b, innerB, out, n)
            return
        }
        // Odometer over the outer loops; offsets move by the strides, no per-element division.
        withUnsafeTemporaryAllocation(of: Int.self, capacity: rank) { counter in
            counter.initialize(repeating: 0)
            var offsetA = 0
            var offsetB = 0
            var offsetOut = 0
            while offsetOut < total {
                inner(f, a + offsetA, innerA, b + offsetB, innerB, out + offsetOut, n)
                offsetOut += n
                var d = rank - 2
                while d >= 0 {
                    counter[d] += 1
                    offsetA += layout.stridesA[d]
                    offsetB += layout.stridesB[d]
                    if counter[d] < layout.sizes[d] { break }
                    offsetA -= layout.stridesA[d] * layout.sizes[d]
                    offsetB -= layout.stridesB[d] * layout.sizes[d]
                    counter[d] = 0
                    d -= 1
                }
            }
        }
    }

    /// One contiguous run of `n` outputs; each input advances by 1 or stays (stride 0).
    @inline(__always)
    private static func inner<F: BinaryFunction>(
        _ f: F.Type, _ a: UnsafePointer<F.Element>, _ sa: Int, _ b: UnsafePointer<F.Element>, _ sb: Int,
        _ out: UnsafeMutablePointer<F.Element>, _ n: Int
    ) {
        var i = 0
        typealias V = SIMD8<F.Element>
        let width = 8
        if F.vectorised {
            let rawOut = UnsafeMutableRawPointer(out)
            switch (sa != 0, sb != 0) {
            case (true, true):
                while i + width <= n {
                    let va = UnsafeRawPointer(a + i).loadUnaligned(as: V.self)
                    let vb = UnsafeRawPointer(b + i).loadUnaligned(as: V.self)
                    rawOut.storeBytes(of: F.vector(va, vb), toByteOffset: i * MemoryLayout<F.Element>.stride, as: V.self)
                    i += width
                }
            case (false, true):
                let va = V(repeating: a[0])
                while i + width <= n {
                    let vb = UnsafeRawPointer(b + i).loadUnaligned(as: V.self)
                    rawOut.storeBytes(of: F.vector(va, vb), toByteOffset: i * MemoryLayout<F.Element>.stride, as: V.self)
                    i += width
                }
            case (true, false):
                let vb = V(repeating: b[0])
                while i + width <= n {
                    let va = UnsafeRawPointer(a + i).loadUnaligned(as: V.self)
                    rawOut.storeBytes(of: F.vector(va, vb), toByteOffset: i * MemoryLayout<F.Element>.stride, as: V.self)
                    i += width
                }
            case (false, false):
                break
            }
        }
        while i < n {
            out[i] = F.scalar(a[i * sa], b[i * sb])
            i += 1
        }
    }
}
