import FulcrumBalancer
import FulcrumProtocol
import FulcrumService
import Foundation
import GRPCCore
import SwiftProtobuf

/// `fulcrum plan`: the planner's table for one model — for each arrival rate, the workers
/// needed, their utilisation, the steady batch size and the predicted p99 — from the live
/// cluster's capacity model (the balancer's Status) or from a profile saved earlier.
public enum Plan {
    /// Where the model's capacity numbers come from.
    public enum Source: Sendable {
        /// The live cluster's balancer, with the admin credentials when it uses mutual TLS.
        case balancer(HostPort, ClusterTLS?)
        case profile(String)
    }

    /// Returns the text to print; writes the profile to `saveProfile` when given.
    public static func run(
        model: String, source: Source, rates: [Double]?, targetMs: Double?, maxWorkers: Int,
        workers: Int? = nil, saveProfile: String?, timeout: Duration
    ) async throws -> String {
        var capacity: Fulcrum_Control_V1_ModelCapacity
        switch source {
        case .balancer(let address, let tls):
            let response = try await withGRPCClient(address, tls: tls) { client in
                var options = CallOptions.defaults
                options.timeout = timeout
                return try await Fulcrum_Control_V1_Balancer.Client(wrapping: client).status(.init(), options: options)
            }
            guard let found = response.models.first(where: { $0.name == model }) else {
                let known = response.models.map(\.name)
                throw OperatorError(
                    "the balancer has no capacity data for '\(model)'"
                        + (known.isEmpty ? " (no worker has reported a model yet)" : "; it knows: \(known.joined(separator: ", "))"))
            }
            capacity = found
        case .profile(let path):
            guard let data = FileManager.default.contents(atPath: path) else { throw OperatorError("cannot read profile '\(path)'") }
            do {
                capacity = try Fulcrum_Control_V1_ModelCapacity(jsonUTF8Data: data)
            } catch {
                throw OperatorError("'\(path)' is not a capacity profile: \(error)")
            }
            guard capacity.name == model else { throw OperatorError("'\(path)' is the profile of '\(capacity.name)', not '\(model)'") }
        }
        if let saveProfile {
            let compact = try capacity.jsonUTF8Data()
            let object = try JSONSerialization.jsonObject(with: compact)
            let pretty = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            guard FileManager.default.createFile(atPath: saveProfile, contents: pretty) else {
                throw OperatorError("cannot write profile '\(saveProfile)'")
            }
        }
        return table(capacity: capacity, rates: rates, targetMs: targetMs, maxWorkers: maxWorkers, workers: workers)
    }

    /// The table for `capacity` at `rates` (default: around the current rate): the smallest pool
    /// that meets the target, or what a fixed pool of `workers` gives.
    public static func table(
        capacity: Fulcrum_Control_V1_ModelCapacity, rates: [Double]?, targetMs: Double?, maxWorkers: Int, workers: Int? = nil
    ) -> String {
        let target = (targetMs ?? capacity.latencyTargetMs) / 1000
        let planner = Planner(
            curve: ServiceCurve(fixed: capacity.fixedSeconds, perSample: capacity.perSampleSeconds),
            maxBatchSize: Int(max(1, capacity.maxBatchSize)), latencyTarget: target,
            headroom: capacity.headroom, networkSeconds: (capacity.networkP99Ms > 0 ? capacity.networkP99Ms : capacity.networkMs) / 1000
        )
        let rates = rates ?? defaultRates(current: capacity.rateShort, planner: planner)
        var lines = [
            "model \(capacity.name): s(b) = \(ms(capacity.fixedSeconds)) ms + \(ms(capacity.perSampleSeconds)) ms × b"
                + " (fitted on \(capacity.curveSamples) batches), max batch \(capacity.maxBatchSize),"
                + " target p99 \(ms(target)) ms, headroom \(Int((capacity.headroom * 100).rounded()))%,"
                + " network \(ms(capacity.networkMs / 1000)) ms mean, \(ms(planner.networkSeconds)) ms p99",
            "current rate \(String(format: "%.1f", capacity.rateShort)) req/s (short window), \(String(format: "%.1f", capacity.rateLong)) req/s (long)",
        ]
        if capacity.curveSamples == 0 {
            lines.append("note: no batch has run yet, so the curve is the planner's prior; send traffic first for a real plan")
        }
        var rows = [["RATE/s", "WORKERS", "UTILISATION", "BATCH", "PREDICTED P99 ms"]]
        for rate in rates {
            let plan = planner.plan(rate: rate, maxWorkers: maxWorkers)
            let row = workers.map { planner.row(rate: rate, workers: $0) } ?? plan.row
            rows.append([
                String(format: "%.0f", rate),
                workers.map(String.init) ?? plan.workers.map(String.init) ?? "> \(maxWorkers)",
                String(format: "%.0f%%", row.utilisation * 100),
                row.batchSize.map(String.init) ?? "-",
                row.p99.map { ms($0) } ?? "cannot keep up",
            ])
        }
        lines += TextTable.lines(rows)
        return lines.joined(separator: "\n")
    }

    /// Rates from a tenth of one worker's best throughput up to sixteen workers' worth (or the
    /// current rate's neighbourhood when there is traffic).
    static func defaultRates(current: Double, planner: Planner) -> [Double] {
        let best = Double(planner.maxBatchSize) / planner.curve.seconds(batch: planner.maxBatchSize)
        let base = current > 1 ? current : best
        return [0.25, 0.5, 1, 2, 4, 8].map { ($0 * base).rounded() }.filter { $0 > 0 }
    }

    static func ms(_ seconds: Double) -> String {
        String(format: "%.2f", seconds * 1000)
    }
}
