import FulcrumProtocol
import FulcrumService
import Foundation
import GRPCCore

/// `fulcrum route`: shows and changes the balancer's traffic routes (which versions answer the
/// requests that name no version). The balancer checks every change against the versions its
/// workers host, stores it in its --state-dir and pushes it to every frontend.
public enum Routes {
    public enum Action: Sendable {
        case show(model: String?)
        case set(TrafficRoute)
        case rollback(model: String)
        case clear(model: String)
        case shift(model: String, Rollout)
    }

    /// Carries out `action` at the balancer; returns the text to print.
    public static func run(_ action: Action, balancer: HostPort, tls: ClusterTLS?, json: Bool, timeout: Duration) async throws -> String {
        let response = try await withGRPCClient(balancer, tls: tls) { client in
            var options = CallOptions.defaults
            options.timeout = timeout
            let control = Fulcrum_Control_V1_Balancer.Client(wrapping: client)
            switch action {
            case .show(let model):
                var request = Fulcrum_Control_V1_GetRoutesRequest()
                request.model = model ?? ""
                return try await control.getRoutes(request, options: options)
            case .set(let route):
                var request = Fulcrum_Control_V1_SetRouteRequest()
                request.route = route.wire
                return try await control.setRoute(request, options: options)
            case .rollback(let model):
                var request = Fulcrum_Control_V1_RollbackRouteRequest()
                request.model = model
                return try await control.rollbackRoute(request, options: options)
            case .clear(let model):
                var request = Fulcrum_Control_V1_ClearRouteRequest()
                request.model = model
                return try await control.clearRoute(request, options: options)
            case .shift(let model, let rollout):
                var request = Fulcrum_Control_V1_ShiftRouteRequest()
                request.model = model
                request.rollout = rollout.wire
                return try await control.shiftRoute(request, options: options)
            }
        }
        let routes = response.routes.map(TrafficRoute.init)
        if json { return Self.json(routes) }
        switch action {
        case .show(let model) where routes.isEmpty:
            return model.map { "model '\($0)' has no route: unversioned requests go to its newest version" } ?? "no routes: unversioned requests go to each model's newest version"
        case .rollback(let model) where routes.isEmpty, .clear(let model):
            return "model '\(model)' has no route now: unversioned requests go to its newest version"
        default:
            return table(routes)
        }
    }

    /// `{"routes": [{model, revision, weights: {version: percent}, pins: [{parameter, value, version}], updated_unix_ms, note}]}`.
    public static func json(_ routes: [TrafficRoute]) -> String {
        let objects: [[String: Any]] = routes.map { route in
            [
                "model": route.model, "revision": Int(route.revision), "updated_unix_ms": Int(route.updatedUnixMs), "note": route.note,
                "weights": Dictionary(uniqueKeysWithValues: route.splits.map { ($0.version, Double($0.basisPoints) / 100) }),
                "pins": route.pins.map { ["parameter": $0.parameter, "value": $0.value, "version": $0.version] },
                "shadows": Dictionary(uniqueKeysWithValues: route.shadows.map { ($0.version, Double($0.basisPoints) / 100) }),
                "rollout": route.rollout.map { r -> Any in
                    [
                        "version": r.version, "target": Double(r.targetBasisPoints) / 100, "step": Double(r.stepBasisPoints) / 100,
                        "every_ms": r.everyMs, "max_p99_ms": r.maxP99Ms as Any, "max_error_rate": r.maxErrorRate as Any,
                        "state": r.state.rawValue, "reason": r.reason, "last_step_unix_ms": Int(r.lastStepUnixMs),
                    ] as [String: Any]
                } ?? NSNull(),
            ]
        }
        let data = (try? JSONSerialization.data(withJSONObject: ["routes": objects], options: [.sortedKeys, .prettyPrinted])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// One line per route: model, revision, weights, pins, when and how it was set.
    public static func table(_ routes: [TrafficRoute]) -> String {
        var rows = [["MODEL", "REVISION", "WEIGHTS", "PINS", "SHADOWS", "UPDATED", "NOTE"]]
        let formatter = ISO8601DateFormatter()
        for route in routes {
            rows.append([
                route.model, String(route.revision),
                route.splits.map { "\($0.version)=\(TrafficRoute.percent($0.basisPoints))%" }.joined(separator: " "),
                route.pins.isEmpty ? "-" : route.pins.map { "\($0.parameter)=\($0.value)→\($0.version)" }.joined(separator: " "),
                route.shadows.isEmpty ? "-" : route.shadows.map { "\($0.version)@\(TrafficRoute.percent($0.basisPoints))%" }.joined(separator: " "),
                formatter.string(from: Date(timeIntervalSince1970: Double(route.updatedUnixMs) / 1000)),
                route.note,
            ])
        }
        var lines = TextTable.lines(rows, trimmed: true)
        for route in routes {
            guard let rollout = route.rollout else { continue }
            lines.append("\(route.model): \(describe(rollout))")
        }
        return lines.joined(separator: "\n")
    }

    /// `rollout of version 2 to 25% in steps of 5% every 30 s (p99 ≤ 20 ms, errors ≤ 0.1%): running, version 2 at 10%`.
    public static func describe(_ rollout: Rollout) -> String {
        var bounds: [String] = []
        if let p99 = rollout.maxP99Ms { bounds.append("p99 ≤ \(p99) ms") }
        if let rate = rollout.maxErrorRate { bounds.append("errors ≤ \(rate * 100)%") }
        let every = rollout.everyMs % 1000 == 0 ? "\(rollout.everyMs / 1000) s" : "\(rollout.everyMs) ms"
        return "rollout of version \(rollout.version) to \(TrafficRoute.percent(rollout.targetBasisPoints))% in steps of "
            + "\(TrafficRoute.percent(rollout.stepBasisPoints))% every \(every)\(bounds.isEmpty ? "" : " (\(bounds.joined(separator: ", ")))"): "
            + "\(rollout.state.rawValue), \(rollout.reason)"
    }

    /// One line per shadow version: how its answers compared with the served version's.
    public static func shadowTable(_ shadows: [Fulcrum_Control_V1_ShadowSample]) -> String {
        var rows = [["MODEL", "SHADOW", "COMPARED", "IDENTICAL", "MAX ABS ERR", "MAX REL ERR", "ARGMAX AGREE", "FAILED", "DROPPED", "SERVED P99 ms", "SHADOW P99 ms"]]
        for s in shadows {
            let p99 = { (buckets: [UInt64]) in LatencyHistogram(counts: buckets).quantileMilliseconds(0.99).map { String(format: "%.2f", $0) } ?? "-" }
            rows.append([
                s.model, s.version, String(s.compared), String(s.identical), String(format: "%.3g", s.maxAbsError), String(format: "%.3g", s.maxRelError),
                s.argmaxRows == 0 ? "-" : String(format: "%.1f%% of %llu", Double(s.argmaxAgreed) / Double(s.argmaxRows) * 100, s.argmaxRows),
                String(s.failed), String(s.dropped), p99(s.servedLatencyBuckets), p99(s.shadowLatencyBuckets),
            ])
        }
        return TextTable.lines(rows, trimmed: true).joined(separator: "\n")
    }

    /// The JSON form of one shadow summary.
    public static func shadowJSON(_ s: Fulcrum_Control_V1_ShadowSample) -> [String: Any] {
        let p99 = { (buckets: [UInt64]) -> Any in LatencyHistogram(counts: buckets).quantileMilliseconds(0.99) ?? NSNull() }
        return [
            "model": s.model, "version": s.version, "compared": Int(s.compared), "identical": Int(s.identical), "failed": Int(s.failed),
            "dropped": Int(s.dropped), "max_abs_error": s.maxAbsError, "max_rel_error": s.maxRelError, "argmax_rows": Int(s.argmaxRows),
            "argmax_agreed": Int(s.argmaxAgreed), "incomparable": Int(s.incomparable),
            "served_p99_ms": p99(s.servedLatencyBuckets), "shadow_p99_ms": p99(s.shadowLatencyBuckets),
        ]
    }

    /// "30s", "500ms", "2m", "1h" → milliseconds.
    public static func parseInterval(_ text: String) -> Int? {
        let units: [(String, Int)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value.isFinite, value >= 0, value * Double(scale) <= 86_400_000 else { return nil }
            return Int((value * Double(scale)).rounded())
        }
        return nil
    }
}
