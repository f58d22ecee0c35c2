import Foundation

/// Writes a load test's report folder: `result.json`, `summary.md`, and SVG plots
/// (`latency.svg`: p50/p99 per second; `throughput.svg`: offered, achieved, errors and drops per
/// second; `latency-vs-load.svg`: per-second p99 against offered rate, open loop only;
/// `pool.svg`: pool size over time, when a balancer was sampled).
public enum ReportWriter {
    /// Writes every file into `directory` (created if needed); returns the file names written.
    @discardableResult
    public static func write(_ result: LoadResult, to directory: String) throws -> [String] {
        let folder = URL(fileURLWithPath: directory)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw LoadError("cannot create the report folder \(directory): \(error.localizedDescription)")
        }
        var files: [(String, String)] = [("result.json", try json(result)), ("summary.md", summary(result))]
        for (name, chart) in charts(result) {
            files.append((name, chart.render()))
        }
        for (name, text) in files {
            do {
                try Data(text.utf8).write(to: folder.appendingPathComponent(name), options: .atomic)
            } catch {
                throw LoadError("cannot write \(name) in \(directory): \(error.localizedDescription)")
            }
        }
        return files.map(\.0)
    }

    /// `result.json`'s text.
    public static func json(_ result: LoadResult) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(result), as: UTF8.self) + "\n"
    }

    /// The plots, by file name.
    public static func charts(_ result: LoadResult) -> [(String, SVGChart)] {
        let series = result.timeSeries
        func points(_ value: (LoadResult.Second) -> Double) -> [(x: Double, y: Double)] {
            series.map { (x: Double($0.t) + 0.5, y: value($0)) }
        }
        let withLatency = series.filter { $0.ok > 0 }
        var charts: [(String, SVGChart)] = [
            ("latency.svg", SVGChart(
                title: "Latency per second (from intended send time)", xLabel: "seconds", yLabel: "ms",
                series: [
                    .init(name: "p50", color: "#1f77b4", points: withLatency.map { (x: Double($0.t) + 0.5, y: Double($0.p50Us) / 1000) }),
                    .init(name: "p99", color: "#d62728", points: withLatency.map { (x: Double($0.t) + 0.5, y: Double($0.p99Us) / 1000) }),
                ])),
            ("throughput.svg", SVGChart(
                title: "Throughput per second", xLabel: "seconds", yLabel: "requests/s",
                series: [
                    .init(name: "offered", color: "#7f7f7f", points: points { Double($0.offered) }),
                    .init(name: "ok", color: "#2ca02c", points: points { Double($0.ok) }),
                    .init(name: "errors", color: "#d62728", points: points { Double($0.errors) }),
                    .init(name: "dropped", color: "#ff7f0e", points: points { Double($0.dropped) }),
                ])),
        ]
        if result.mode == "open" {
            charts.append(("latency-vs-load.svg", SVGChart(
                title: "p99 latency against offered load (one dot per second)", xLabel: "offered requests/s", yLabel: "p99 ms",
                series: [.init(name: "p99", color: "#d62728", points: withLatency.filter { !$0.warmup }.map { (x: Double($0.offered), y: Double($0.p99Us) / 1000) })],
                dots: true)))
        }
        if let pool = result.pool {
            charts.append(("pool.svg", SVGChart(
                title: "Compute pool size (balancer Status, every second)", xLabel: "seconds", yLabel: "workers",
                series: [
                    .init(name: "workers", color: "#1f77b4", points: pool.map { (x: $0.t, y: Double($0.workers)) }),
                    .init(name: "ready", color: "#2ca02c", points: pool.map { (x: $0.t, y: Double($0.ready)) }),
                ])))
        }
        return charts
    }

    /// `summary.md`'s text.
    public static func summary(_ result: LoadResult) -> String {
        func ms(_ micros: UInt64) -> String { String(format: "%.2f", Double(micros) / 1000) }
        func ms(_ micros: Double) -> String { String(format: "%.2f", micros / 1000) }
        let pacing = result.mode == "open"
            ? "open loop, schedule `\(result.schedule ?? "")` (\(result.poisson ? "Poisson" : "evenly spaced") arrivals, at most \(result.maxInFlight ?? 0) in flight)"
            : "closed loop, concurrency \(result.concurrency ?? 0)"
        var lines = [
            "# Load test: \(result.model) at \(result.target)",
            "",
            "- started \(result.startedAt); \(pacing); \(result.connections) connection(s), batch \(result.batch), seed \(result.seed)",
            "- command: `\(result.command)`",
            "- measured \(String(format: "%.1f", result.measuredSeconds)) s after \(String(format: "%.1f", result.warmup.seconds)) s of warm-up (\(result.warmup.completed) warm-up requests not counted)",
            "",
            "| requests | ok | errors | dropped | offered/s | achieved/s |",
            "|---:|---:|---:|---:|---:|---:|",
            "| \(result.requests) | \(result.ok) | \(result.errors) | \(result.dropped) | \(result.offeredRate.map { String(format: "%.1f", $0) } ?? "-") | \(String(format: "%.1f", result.achievedRate)) |",
            "",
            "Latency of successful requests, from the intended send time (ms):",
            "",
            "| min | mean | p50 | p90 | p99 | p99.9 | max |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            "| \(ms(result.latencyUs.min)) | \(ms(result.latencyUs.mean)) | \(ms(result.latencyUs.p50)) | \(ms(result.latencyUs.p90)) | \(ms(result.latencyUs.p99)) | \(ms(result.latencyUs.p999)) | \(ms(result.latencyUs.max)) |",
            "",
        ]
        if !result.errorsByCode.isEmpty {
            lines.append("Errors by gRPC status: " + result.errorsByCode.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            if let failed = result.errorLatencyUs {
                lines.append("")
                lines.append("Failed requests came back in (ms): p50 \(ms(failed.p50)), p99 \(ms(failed.p99)), max \(ms(failed.max)).")
            }
            lines.append("")
        }
        if !result.breakdownUs.isEmpty {
            lines += ["Where the time went (Fulcrum's response parameters, ms):", "", "| part | mean | p99 |", "|---|---:|---:|"]
            for part in BreakdownPart.allCases {
                if let value = result.breakdownUs[part.rawValue] {
                    lines.append("| \(part.rawValue) | \(ms(value.mean)) | \(ms(value.p99)) |")
                }
            }
            lines.append("")
        }
        if let steps = result.stepsUs, !steps.isEmpty {
            lines += [
                "Pipeline steps (each step's round trip as the frontend saw it, ms; a pool step includes its network, queue and compute, a processor step its own work in the frontend):",
                "", "| step | mean | p99 |", "|---|---:|---:|",
            ]
            let ordered = steps.keys.sorted { (Int($0.prefix { $0 != "." }) ?? 0, $0) < (Int($1.prefix { $0 != "." }) ?? 0, $1) }
            for step in ordered {
                let value = steps[step]!
                lines.append("| \(step) | \(ms(value.mean)) | \(ms(value.p99)) |")
            }
            lines.append("")
        }
        if let pool = result.pool, !pool.isEmpty {
            lines.append("Pool size: \(pool.map(\.workers).min() ?? 0)–\(pool.map(\.workers).max() ?? 0) workers over the test (pool.svg).")
            lines.append("")
        }
        lines.append(String(
            format: "Generator cost: %.1f µs of CPU per request (user %.2f s + system %.2f s over %d requests, getrusage).",
            result.generator.cpuUsPerRequest, result.generator.cpuUserSeconds, result.generator.cpuSystemSeconds, result.generator.requestsSent
        ))
        lines += ["", "Plots: latency.svg, throughput.svg" + (result.mode == "open" ? ", latency-vs-load.svg" : "") + (result.pool != nil ? ", pool.svg" : ""), ""]
        return lines.joined(separator: "\n")
    }
}
