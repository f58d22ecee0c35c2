import FulcrumProtocol
import FulcrumService
import Foundation
import GRPCCore

/// `fulcrum status`: the pool as the balancer sees it, as a table or as JSON for scripts.
public enum Status {
    /// Asks the balancer; returns the text to print.
    /// `tls`: the admin credentials for a balancer with mutual TLS (`AdminCredentials`).
    public static func run(balancer: HostPort, tls: ClusterTLS?, json: Bool, timeout: Duration) async throws -> String {
        let response = try await withGRPCClient(balancer, tls: tls) { client in
            var options = CallOptions.defaults
            options.timeout = timeout
            return try await Fulcrum_Control_V1_Balancer.Client(wrapping: client).status(Fulcrum_Control_V1_StatusRequest(), options: options)
        }
        return json ? Self.json(response) : table(response)
    }

    static func stateName(_ state: Fulcrum_Control_V1_WorkerState) -> String {
        switch state {
        case .starting: "STARTING"
        case .ready: "READY"
        case .draining: "DRAINING"
        case .unready: "UNREADY"
        default: "UNKNOWN"
        }
    }

    /// The JSON form: `{"generation", "watching_frontends", "workers": [{id, name, address, pid, state, backend, queue_depth, last_report_unix_ms, models: [{name, version, state, reason}]}]}`.
    public static func json(_ response: Fulcrum_Control_V1_StatusResponse) -> String {
        let workers: [[String: Any]] = response.pool.workers.map { worker in
            [
                "id": worker.workerID, "name": worker.name, "address": worker.address, "pid": Int(worker.pid),
                "state": stateName(worker.state), "backend": worker.backend, "zone": worker.zone,
                "device": [
                    "name": worker.device.name, "vendor": worker.device.vendor, "driver": worker.device.driver,
                    "memory_bytes": Int(worker.device.memoryBytes),
                ] as [String: Any],
                "queue_depth": Int(worker.lastLoad.queueDepth),
                "metrics": worker.metricsAddress,
                "last_report_unix_ms": Int(worker.lastReportUnixMs),
                "models": worker.models.map { ["name": $0.name, "version": $0.version, "state": $0.state, "reason": $0.reason] },
            ]
        }
        let models: [[String: Any]] = response.models.map { m in
            [
                "name": m.name, "rate_short": m.rateShort, "rate_long": m.rateLong,
                "fixed_ms": m.fixedSeconds * 1000, "per_sample_ms": m.perSampleSeconds * 1000, "curve_samples": Int(m.curveSamples),
                "max_batch_size": Int(m.maxBatchSize), "latency_target_ms": m.latencyTargetMs, "queue_delay_ms": m.queueDelayMs,
                "planned_workers": Int(m.plannedWorkers), "utilisation": m.utilisation, "predicted_p99_ms": m.predictedP99Ms,
                "network_ms": m.networkMs, "network_p99_ms": m.networkP99Ms,
            ]
        }
        let decision = { (d: Fulcrum_Control_V1_ScalingDecision) -> [String: Any] in
            ["unix_ms": Int(d.unixMs), "current": Int(d.current), "desired": Int(d.desired), "reason": d.reason]
        }
        let s = response.scaling
        let object: [String: Any] = [
            "generation": Int(response.pool.generation),
            "watching_frontends": Int(response.watchingFrontends),
            "balancer_version": response.balancerVersion,
            "workers": workers,
            "models": models,
            "shadows": response.shadows.map(Routes.shadowJSON),
            "routes": response.pool.routes.map { route in
                [
                    "model": route.model, "revision": Int(route.revision), "note": route.note,
                    "weights": Dictionary(route.weights.map { ($0.version, Double($0.basisPoints) / 100) }, uniquingKeysWith: +),
                    "pins": route.rules.map { ["parameter": $0.parameter, "value": $0.value, "version": $0.version] },
                ] as [String: Any]
            },
            "scaling": [
                "scaler": s.scaler, "min_workers": Int(s.minWorkers), "max_workers": Int(s.maxWorkers),
                "current": Int(s.current), "desired": Int(s.desired), "latest": decision(s.latest),
                "changes": s.changes.map(decision),
            ] as [String: Any],
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// `NVIDIA H100 80GB HBM3 (80.0 GiB)`, or the name alone when no memory is reported; a CPU
    /// worker adds its kernels: `AMD EPYC (23.4 GiB) OpenBLAS SkylakeX (AVX-512)`.
    static func deviceSummary(_ device: Fulcrum_Control_V1_DeviceInfo) -> String {
        let kernels = device.vendor == "host" && device.driver.hasPrefix("OpenBLAS") ? " \(device.driver)" : ""
        guard device.memoryBytes > 0 else { return (device.name.isEmpty ? "-" : device.name) + kernels }
        return "\(device.name) (\(String(format: "%.1f", Double(device.memoryBytes) / Double(1 << 30))) GiB)" + kernels
    }

    /// The table form.
    public static func table(_ response: Fulcrum_Control_V1_StatusResponse) -> String {
        var lines = ["pool generation \(response.pool.generation), \(response.pool.workers.count) workers, \(response.watchingFrontends) frontends watching"]
        let header = ["WORKER", "ADDRESS", "PID", "STATE", "BACKEND", "DEVICE", "QUEUE", "MODELS"]
        var rows = [header]
        for worker in response.pool.workers {
            let models = worker.models.map { "\($0.name):\($0.version.isEmpty ? "-" : $0.version)\($0.state == "READY" ? "" : "(\($0.state))")" }
            rows.append([
                worker.workerID, worker.address, String(worker.pid), stateName(worker.state), worker.backend,
                deviceSummary(worker.device), String(worker.lastLoad.queueDepth), models.joined(separator: " "),
            ])
        }
        lines += TextTable.lines(rows)
        if !response.models.isEmpty {
            lines.append("")
            var capacity = [["MODEL", "RATE/s", "s(b) ms", "MAX BATCH", "TARGET ms", "QUEUE ms", "NET P99 ms", "PLANNED", "UTIL", "PRED P99 ms"]]
            for m in response.models {
                capacity.append([
                    m.name, String(format: "%.1f", m.rateShort),
                    m.curveSamples == 0 ? "(no batches yet)" : String(format: "%.2f+%.2f·b", m.fixedSeconds * 1000, m.perSampleSeconds * 1000),
                    String(m.maxBatchSize), String(format: "%.0f", m.latencyTargetMs), String(format: "%.2f", m.queueDelayMs),
                    String(format: "%.2f", m.networkP99Ms),
                    m.plannedWorkers == 0 ? "-" : String(m.plannedWorkers), String(format: "%.0f%%", m.utilisation * 100),
                    m.predictedP99Ms > 0 ? String(format: "%.2f", m.predictedP99Ms) : "-",
                ])
            }
            lines += TextTable.lines(capacity)
        }
        if !response.pool.routes.isEmpty {
            lines.append("")
            lines.append("routes (requests that name no version):")
            lines.append(Routes.table(response.pool.routes.map(TrafficRoute.init)))
        }
        if !response.shadows.isEmpty {
            lines.append("")
            lines.append("shadow versions (answers compared with the served ones, never returned):")
            lines.append(Routes.shadowTable(response.shadows))
        }
        let s = response.scaling
        if !s.scaler.isEmpty {
            lines.append("")
            lines.append("scaling (\(s.scaler) scaler, \(s.minWorkers)–\(s.maxWorkers) workers): current \(s.current), desired \(s.desired)")
            if !s.latest.reason.isEmpty { lines.append("  now: \(s.latest.reason)") }
            for change in s.changes.suffix(5) {
                let time = Date(timeIntervalSince1970: Double(change.unixMs) / 1000)
                lines.append("  \(ISO8601DateFormatter().string(from: time)): \(change.reason)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
