/// A reduction over some axes of an FP32 tensor.
public enum ReductionOperator: String, Sendable, CaseIterable {
    /// Sum.
    case sum
    /// Arithmetic mean.
    case mean
    /// Maximum.
    case max
}

extension CPUBackend {
    /// Reduces `input` into `out` along the loops of `layout`, whose source strides walk the
    /// input contiguously and whose destination strides are 0 on reduced axes (so every input
    /// element lands on its output element). `outputCount` is the number of output elements and
    /// `reducedCount` the number of inputs per output (the mean's divisor).
    public func reduce(
        _ op: ReductionOperator, _ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
        layout: CopyLayout, outputCount: Int, reducedCount: Int
    ) {
        out.update(repeating: op == .max ? -Float.infinity : 0, count: outputCount)
        guard layout.elementCount > 0 else {
            if op == .max { out.update(repeating: -Float.infinity, count: outputCount) }
            return
        }
        let rank = layout.sizes.count
        let n = layout.sizes[rank - 1]
        let si = layout.sourceStrides[rank - 1]
        let di = layout.destinationStrides[rank - 1]
        let isMax = op == .max
        @inline(__always) func inner(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>) {
            if di == 0 {
                if si == 1 {
                    var k = 0
                    var v = SIMD8<Float>(repeating: isMax ? -Float.infinity : 0)
                    while k + 8 <= n {
                        let x = UnsafeRawPointer(s + k).loadUnaligned(as: SIMD8<Float>.self)
                        v = isMax ? pointwiseMax(v, x) : v + x
                        k += 8
                    }
                    var acc = isMax ? v.max() : v.sum()
                    while k < n {
                        acc = isMax ? Swift.max(acc, s[k]) : acc + s[k]
                        k += 1
                    }
                    d[0] = isMax ? Swift.max(d[0], acc) : d[0] + acc
                } else {
                    for i in 0..<n { d[0] = isMax ? Swift.max(d[0], s[i * si]) : d[0] + s[i * si] }
                }
            } else {
                for i in 0..<n { d[i * di] = isMax ? Swift.max(d[i * di], s[i * si]) : d[i * di] + s[i * si] }
            }
        }
        if rank == 1 {
            inner(input, out)
        } else {
            withUnsafeTemporaryAllocation(of: Int.self, capacity: rank) { counter in
                counter.initialize(repeating: 0)
                var offsetS = 0
                var offsetD = 0
                var done = 0
                while done < layout.elementCount {
                    inner(input + offsetS, out + offsetD)
                    done += n
                    var d = rank - 2
                    while d >= 0 {
                        counter[d] += 1
                        offsetS += layout.sourceStrides[d]
                        offsetD += layout.destinationStrides[d]
                        if counter[d] < layout.sizes[d] { break }
                        offsetS -= layout.sourceStrides[d] * layout.sizes[d]
                        offsetD -= layout.destinationStrides[d] * layout.sizes[d]
                        counter[d] = 0
                        d -= 1
                    }
                }
            }
        }
        if op == .mean, reducedCount > 0 {
            let scale = 1 / Float(reducedCount)
            simd(out, out, outputCount, { $0 * scale }, { $0 * scale })
        }
    }

    /// Index of the largest (or smallest, `largest == false`) element along the middle axis of
    /// `[outer, axis, inner]`; ties go to the first index, or the last with `selectLastIndex`.
    public func argExtremum(
        _ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Int64>, outer: Int, axis: Int, inner: Int,
        largest: Bool, selectLastIndex: Bool
    ) {
        guard axis > 0 else { return }
        for o in 0..<outer {
            for j in 0..<inner {
                let base = o * axis * inner + j
                var best = input[base]
                var bestIndex = 0
                for k in 1..<axis {
                    let v = input[base + k * inner]
                    let better = largest ? (v > best || (selectLastIndex && v == best)) : (v < best || (selectLastIndex && v == best))
                    if better {
                        best = v
                        bestIndex = k
                    }
                }
                out[o * inner + j] = Int64(bestIndex)
            }
        }
    }
}
