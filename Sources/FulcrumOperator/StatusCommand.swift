import FulcrumProtocol
import FulcrumService
import Foundation
import GRPCCore

/// `fulcrum status`: the pool as the balancer sees it, as a table or as JSON for scripts.
public enum Status {
    /// Asks the balancer; returns the text to print.
    public static func run(balancer: HostPort, json: Bool, timeout: Duration) async throws -> String {
        let response = try await withGRPCClient(balancer) { client in
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
                "device": ["name": worker.device.name, "vendor": worker.device.vendor],
                "queue_depth": Int(worker.lastLoad.queueDepth),
                "last_report_unix_ms": Int(worker.lastReportUnixMs),
                "models": worker.models.map { ["name": $0.name, "version": $0.version, "state": $0.state, "reason": $0.reason] },
            ]
        }
        let object: [String: Any] = [
            "generation": Int(response.pool.generation),
            "watching_frontends": Int(response.watchingFrontends),
            "balancer_version": response.balancerVersion,
            "workers": workers,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// The table form.
    public static func table(_ response: Fulcrum_Control_V1_StatusResponse) -> String {
        var lines = ["pool generation \(response.pool.generation), \(response.pool.workers.count) workers, \(response.watchingFrontends) frontends watching"]
        let header = ["WORKER", "ADDRESS", "PID", "STATE", "BACKEND", "QUEUE", "MODELS"]
        var rows = [header]
        for worker in response.pool.workers {
            let models = worker.models.map { "\($0.name):\($0.version.isEmpty ? "-" : $0.version)\($0.state == "READY" ? "" : "(\($0.state))")" }
            rows.append([
                worker.workerID, worker.address, String(worker.pid), stateName(worker.state), worker.backend,
                String(worker.lastLoad.queueDepth), models.joined(separator: " "),
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            lines.append(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
        return lines.joined(separator: "\n")
    }
}
