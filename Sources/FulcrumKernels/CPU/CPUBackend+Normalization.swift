extension CPUBackend {
    /// Layer normalisation of `rows` contiguous rows of `columns` FP32 elements:
    /// `y = (x - mean) / sqrt(var + epsilon) * scale + bias`, with `scale` and `bias` (optional)
    /// of `columns` elements. Mean and variance are computed in two passes (8 lanes) for
    /// accuracy. `mean` and `inverseStandardDeviation`, when given, receive one value per row.
    /// `out` may equal `input`.
    public func layerNormalization(
        _ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
        scale: UnsafePointer<Float>, bias: UnsafePointer<Float>?, epsilon: Float,
        mean meanOut: UnsafeMutablePointer<Float>? = nil, inverseStandardDeviation invOut: UnsafeMutablePointer<Float>? = nil
    ) {
        guard columns > 0 else { return }
        for r in 0..<rows {
            let x = input + r * columns
            let y = out + r * columns
            var vsum = SIMD8<Float>(repeating: 0)
            var k = 0
            while k + 8 <= columns {
                vsum += UnsafeRawPointer(x + k).loadUnaligned(as: SIMD8<Float>.self)
                k += 8
            }
            var sum = vsum.sum()
            while k < columns {
                sum += x[k]
                k += 1
            }
            let mean = sum / Float(columns)
            var vsq = SIMD8<Float>(repeating: 0)
            k = 0
            while k + 8 <= columns {
                let d = UnsafeRawPointer(x + k).loadUnaligned(as: SIMD8<Float>.self) - mean
                vsq += d * d
                k += 8
            }
            var squares = vsq.sum()
            while k < columns {
                let d = x[k] - mean
                squares += d * d
                k += 1
            }
            let inverse = 1 / (squares / Float(columns) + epsilon).squareRoot()
            meanOut?[r] = mean
            invOut?[r] = inverse
            k = 0
            let raw = UnsafeMutableRawPointer(y)
            while k + 8 <= columns {
                let v = UnsafeRawPointer(x + k).loadUnaligned(as: SIMD8<Float>.self)
                var result = (v - mean) * inverse * UnsafeRawPointer(scale + k).loadUnaligned(as: SIMD8<Float>.self)
                if let bias { result += UnsafeRawPointer(bias + k).loadUnaligned(as: SIMD8<Float>.self) }
                raw.storeBytes(of: result, toByteOffset: k * 4, as: SIMD8<Float>.self)
                k += 8
            }
            while k < columns {
                y[k] = (x[k] - mean) * inverse * scale[k] + (bias?[k] ?? 0)
                k += 1
            }
        }
    }

    /// Batch normalisation in inference mode over `[batch, channels, spatial]` FP32:
    /// `y = (x - mean[c]) / sqrt(variance[c] + epsilon) * scale[c] + bias[c]`. `out` may equal
    /// `input`.
    public func batchNormalization(
        _ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, batch: Int, channels: Int, spatial: Int,
        scale: UnsafePointer<Float>, bias: UnsafePointer<Float>, mean: UnsafePointer<Float>,
        variance: UnsafePointer<Float>, epsilon: Float
    ) {
        for n in 0..<batch {
            for c in 0..<channels {
                let factor = scale[c] / (variance[c] + epsilon).squareRoot()
                let shift = bias[c] - mean[c] * factor
                let offset = (n * channels + c) * spatial
                simd(input + offset, out + offset, spatial, { $0 * factor + shift }, { $0 * factor + shift })
            }
        }
    }
}
