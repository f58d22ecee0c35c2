import Foundation
import FulcrumRuntime
import FulcrumSchema

/// What runs one batch for a model instance: the runtime's `ModelInstance` on the CPU, or an
/// emulated device for capacity experiments. Each executor is used from one dispatch queue.
protocol BatchExecutor: AnyObject, Sendable {
    func execute(_ inputs: [String: Tensor]) throws(FulcrumSchema.RuntimeError) -> [String: Tensor]
}

extension ModelInstance: BatchExecutor {}

/// A device whose batch of b samples takes `fixed + perSample · b`, for sizing experiments
/// (the balancer's planner, autoscaling benchmarks) without the hardware: `fulcrum-worker
/// --emulate 5+1` behaves like an accelerator that needs 5 ms per execution plus 1 ms per
/// sample. The model is still loaded and checked and requests are still validated and batched
/// for real; only the execution is replaced by a wait, and the outputs are zeros of the shape
/// the configuration declares (variable dimensions as 1). Responses say so: the worker reports
/// its backend as `emulated`.
public struct EmulationProfile: Sendable, Equatable, CustomStringConvertible {
    public var fixed: Duration
    public var perSample: Duration

    public init(fixed: Duration, perSample: Duration) {
        self.fixed = fixed
        self.perSample = perSample
    }

    /// Parses `FIXED_MS+PER_SAMPLE_MS`, e.g. `5+1` or `0.5+0.25`.
    public init?(parsing text: String) {
        let parts = text.split(separator: "+", omittingEmptySubsequences: false)
        guard parts.count == 2,
            let fixed = Double(parts[0].trimmingCharacters(in: .whitespaces)),
            let perSample = Double(parts[1].trimmingCharacters(in: .whitespaces)),
            fixed >= 0, perSample >= 0, fixed + perSample > 0
        else { return nil }
        self.fixed = .microseconds(Int64((fixed * 1000).rounded()))
        self.perSample = .microseconds(Int64((perSample * 1000).rounded()))
    }

    /// Reads a profile file: either the capacity profile JSON `fulcrum plan --profile-out` writes
    /// (its `fixedSeconds` and `perSampleSeconds`: s(b) measured on a real device) or a text file
    /// holding `FIXED_MS+PER_SAMPLE_MS` (written by hand). Throws a message naming the file.
    public init(file path: String) throws(WorkerError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WorkerError(message: "--profile: cannot read '\(path)'")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if let parsed = EmulationProfile(parsing: text) {
            self = parsed
            return
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw WorkerError(message: "--profile: '\(path)' is neither a capacity profile (JSON from `fulcrum plan --profile-out`) nor FIXED_MS+PER_SAMPLE_MS")
        }
        // The profile's JSON names (protobuf's JSON mapping: camelCase; accept snake_case too).
        func number(_ names: String...) -> Double? {
            for name in names { if let value = object[name] as? Double { return value } }
            return nil
        }
        let fixed = number("fixedSeconds", "fixed_seconds") ?? 0
        let perSample = number("perSampleSeconds", "per_sample_seconds") ?? 0
        guard fixed >= 0, perSample >= 0, fixed + perSample > 0 else {
            throw WorkerError(message: "--profile: '\(path)' has no service-time curve (fixedSeconds and perSampleSeconds are zero or missing)")
        }
        self.init(fixed: .microseconds(Int64((fixed * 1e6).rounded())), perSample: .microseconds(Int64((perSample * 1e6).rounded())))
    }

    /// How long a batch of `samples` takes.
    public func duration(samples: Int) -> Duration {
        fixed + perSample * samples
    }

    public var description: String {
        "\(Self.ms(fixed)) ms + \(Self.ms(perSample)) ms per sample"
    }

    private static func ms(_ d: Duration) -> String {
        let value = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
        return value == value.rounded() ? String(Int(value)) : String(value)
    }
}

/// Executes by waiting for the profile's service time (see `EmulationProfile`).
final class EmulatedExecutor: BatchExecutor, Sendable {
    let profile: EmulationProfile
    let outputs: [ModelConfiguration.TensorConfiguration]
    let batching: Bool

    init(profile: EmulationProfile, configuration: ModelConfiguration) {
        self.profile = profile
        self.outputs = configuration.outputs
        self.batching = configuration.maxBatchSize > 0
    }

    func execute(_ inputs: [String: Tensor]) throws(FulcrumSchema.RuntimeError) -> [String: Tensor] {
        let samples = batching ? (inputs.values.first?.shape.first ?? 1) : 1
        let deadline = ContinuousClock.now + profile.duration(samples: samples)
        // Sleep most of the way, then spin briefly: usleep alone overshoots by ~0.1 ms.
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            if left <= .zero { break }
            if left > .microseconds(200) {
                let micros = (left - .microseconds(100)).components.attoseconds / 1_000_000_000_000
                    + left.components.seconds * 1_000_000
                usleep(UInt32(max(1, micros)))
            }
        }
        var result: [String: Tensor] = [:]
        for output in outputs {
            let dims = output.dims.map { $0 < 0 ? 1 : $0 }
            let shape = batching ? [samples] + dims : dims
            let count = shape.reduce(1, *)
            if let size = output.dataType.byteSize {
                result[output.name] = Tensor(dataType: output.dataType, shape: shape, data: [UInt8](repeating: 0, count: count * size))
            } else {
                // BYTES: each element an empty string (a 4-byte zero length).
                result[output.name] = Tensor(dataType: output.dataType, shape: shape, data: [UInt8](repeating: 0, count: count * 4))
            }
        }
        return result
    }
}
