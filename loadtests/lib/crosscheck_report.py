"""Writes loadtests/crosscheck's summary.md and crosscheck.json from its raw/ folder: h2load's
stdout and --log-file (one line per measured request: start µs, HTTP status, µs to the end of
the response) and `fulcrum loadtest`'s result.json, point by point."""

import argparse
import gzip
import json
import os
import re
import statistics

TARGET = 10.0  # per cent


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[rank]


def read_log(raw, tag):
    """h2load's --log-file lines (the scripts gzip it once the report is written)."""
    path = os.path.join(raw, tag + ".log")
    return gzip.open(path + ".gz", "rt") if os.path.exists(path + ".gz") else open(path)


def h2load(raw, tag):
    text = open(os.path.join(raw, tag + ".out")).read()
    rate = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", text).group(1))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
    total, _, done, succeeded, failed, errored, timeout = map(int, m.groups())
    status = re.search(r"status codes: (\d+) 2xx", text)
    latencies = []
    for line in read_log(raw, tag):
        parts = line.split()
        if len(parts) >= 3 and parts[1].startswith("2"):
            latencies.append(int(parts[2]))
    latencies.sort()
    cpu = json.load(open(os.path.join(raw, tag + ".cpu.json")))
    return {
        "cpu_us_per_request": (cpu["user_s"] + cpu["system_s"]) / (done + warm(text)) * 1e6 if done else None,
        "throughput": rate, "requests": done, "succeeded": succeeded, "failed": failed + errored + timeout,
        "status_2xx": int(status.group(1)) if status else None,
        "p50_us": percentile(latencies, 50), "p99_us": percentile(latencies, 99),
        "mean_us": statistics.fmean(latencies) if latencies else None, "logged": len(latencies),
    }


def warm(text):
    """h2load does not count warm-up requests; estimate them from the rate (for CPU per request)."""
    m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", text)
    main = re.search(r"(\d+)s of main duration", text)
    if not (m and main):
        return 0
    return int(round(float(m.group(2)) * (float(m.group(1)) - float(main.group(1)))))


def fulcrum(raw, tag):
    r = json.load(open(os.path.join(raw, tag, "result.json")))
    cpu = json.load(open(os.path.join(raw, tag + ".cpu.json")))
    return {
        "process_cpu_us_per_request": (cpu["user_s"] + cpu["system_s"]) / r["generator"]["requests_sent"] * 1e6,
        "throughput": r["achieved_rate"], "requests": r["requests"], "succeeded": r["ok"], "failed": r["errors"],
        "errors_by_code": r["errors_by_code"], "p50_us": r["latency_us"]["p50"], "p99_us": r["latency_us"]["p99"],
        "mean_us": r["latency_us"]["mean"], "cpu_us_per_request": r["generator"]["cpu_us_per_request"],
        "command": r["command"],
    }


def diff(a, b):
    return (a - b) / b * 100 if b else float("nan")


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--dir", "--points", "--command"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--warmup", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args()
    raw = os.path.join(args.dir, "raw")
    rows = []
    for point in args.points.split():
        c, n = map(int, point.split(":"))
        for r in range(1, args.rounds + 1):
            h = h2load(raw, f"h2load-c{c}-n{n}-r{r}")
            f = fulcrum(raw, f"fulcrum-c{c}-n{n}-r{r}")
            rows.append({"concurrency": c, "connections": n, "round": r, "first": "h2load" if r % 2 else "fulcrum",
                         "h2load": h, "fulcrum": f,
                         "throughput_diff_pct": diff(f["throughput"], h["throughput"]),
                         "p50_diff_pct": diff(f["p50_us"], h["p50_us"])})
    points = []
    for point in args.points.split():
        c, n = map(int, point.split(":"))
        mine = [row for row in rows if row["concurrency"] == c and row["connections"] == n]
        t = statistics.median(row["throughput_diff_pct"] for row in mine)
        p = statistics.median(row["p50_diff_pct"] for row in mine)
        points.append({"concurrency": c, "connections": n, "throughput_diff_pct": t, "p50_diff_pct": p,
                       "within_target": abs(t) <= TARGET and abs(p) <= TARGET})
    json.dump({"command": args.command, "target_pct": TARGET, "rows": rows, "points": points},
              open(os.path.join(args.dir, "crosscheck.json"), "w"), indent=2)

    env = open(os.path.join(args.dir, "environment.txt")).read().strip()
    out = [f"# Cross-check: `fulcrum loadtest` against h2load, closed loop", "",
           f"- command: `{args.command.strip()}` (wrapped in `flock /tmp/fulcrum-bench.lock`)",
           f"- each run: {args.duration:g} s measured after {args.warmup:g} s of warm-up, closed loop at concurrency C "
           "over N HTTP/2 connections (`h2load -c N -m C/N`, `fulcrum loadtest --concurrency C --connections N`), "
           "the two tools one after the other against the same server; exact commands in commands.txt",
           "- h2load sends request.grpc (one pre-encoded ModelInfer message, checked first to answer OK with outputs); "
           "fulcrum loadtest sends 16 requests of the same shape made from the model's metadata",
           "- latency: h2load from its --log-file (request start to end of response, measured requests only); "
           "fulcrum from its result.json (closed loop: from the actual send)",
           "- CPU per request: h2load's whole process (getrusage of the child: start-up included) over its requests "
           "(warm-up estimated from its rate); fulcrum's own report (`generator.cpu_us_per_request`: first request to "
           "last response) / its whole process measured the same way as h2load's",
           "- the machine is 2 cores shared with other jobs; server, h2load and fulcrum loadtest run on the same cores", ""]
    out += ["```", env, "```", ""]
    out += ["| C | N | round | first | h2load req/s | fulcrum req/s | Δ req/s | h2load p50 ms | fulcrum p50 ms | Δ p50 | h2load p99 ms | fulcrum p99 ms | errors h2load / fulcrum | h2load µs CPU/req | fulcrum µs CPU/req (self / process) |",
            "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for row in rows:
        h, f = row["h2load"], row["fulcrum"]
        out.append(f"| {row['concurrency']} | {row['connections']} | {row['round']} | {row['first']} | {h['throughput']:.0f} | "
                   f"{f['throughput']:.0f} | {row['throughput_diff_pct']:+.1f}% | {h['p50_us'] / 1000:.3f} | {f['p50_us'] / 1000:.3f} | "
                   f"{row['p50_diff_pct']:+.1f}% | {h['p99_us'] / 1000:.3f} | {f['p99_us'] / 1000:.3f} | {h['failed']} / {f['failed']} | "
                   f"{h['cpu_us_per_request']:.1f} | {f['cpu_us_per_request']:.1f} / {f['process_cpu_us_per_request']:.1f} |")
    out += ["", f"Verdict (median over rounds; target: throughput and p50 within ±{TARGET:.0f}%):", ""]
    for p in points:
        out.append(f"- C={p['concurrency']} over {p['connections']} connection(s): throughput {p['throughput_diff_pct']:+.1f}%, "
                   f"p50 {p['p50_diff_pct']:+.1f}% — {'**within**' if p['within_target'] else '**outside**'} the target")
    out.append("")
    open(os.path.join(args.dir, "summary.md"), "w").write("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
