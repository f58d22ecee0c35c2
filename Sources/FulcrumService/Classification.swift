import Foundation
import FulcrumSchema
import GRPCCore

/// Triton's classification extension: a requested output with the parameter
/// `classification: k` comes back as the top k classes of each batch row, as BYTES elements
/// `"<value>:<index>[:<label>]"` (label from the output's `label_filename`), shape [batch, k].
public enum Classification {
    /// The top-`k` classes of `tensor` (FP32, FP64 or an integer type), row by row.
    public static func topK(
        _ tensor: Tensor, k: Int, labels: [String]?, batching: Bool, output: String
    ) throws(RPCError) -> Tensor {
        let values: [Double]
        switch tensor.dataType {
        case .fp32: values = tensor.scalars(as: Float.self).map(Double.init)
        case .fp64: values = tensor.scalars(as: Double.self)
        case .int32: values = tensor.scalars(as: Int32.self).map(Double.init)
        case .int64: values = tensor.scalars(as: Int64.self).map(Double.init)
        default:
            throw RPCError(code: .invalidArgument, message: "output '\(output)': classification needs a numeric output, not \(tensor.dataType.rawValue)")
        }
        let rows = batching ? max(tensor.shape.first ?? 1, 1) : 1
        let classes = rows > 0 ? values.count / rows : 0
        let count = min(k, classes)
        var data: [UInt8] = []
        for row in 0..<rows {
            let slice = values[(row * classes)..<((row + 1) * classes)]
            let top = slice.indices.sorted { slice[$0] != slice[$1] ? slice[$0] > slice[$1] : $0 < $1 }.prefix(count)
            for index in top {
                let classIndex = index - row * classes
                var text = "\(String(format: "%f", slice[index])):\(classIndex)"
                if let labels, classIndex < labels.count { text += ":\(labels[classIndex])" }
                let utf8 = Array(text.utf8)
                withUnsafeBytes(of: UInt32(utf8.count).littleEndian) { data.append(contentsOf: $0) }
                data.append(contentsOf: utf8)
            }
        }
        return Tensor(dataType: .bytes, shape: batching ? [rows, count] : [count], data: data)
    }
}
