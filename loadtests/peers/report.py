"""Writes loadtests/peers/compare's summary.md and comparison.json from OUTPUT/raw/<server>-c<C>/
(result.json of `fulcrum loadtest`, server_cpu.json) and the run's environment, servers,
commands and failures files."""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from crosscheck_report import h2load, read_log, warm  # noqa: E402

LABELS = {
    "fulcrum": "Fulcrum",
    "kserve": "KServe",
    "mlserver": "MLServer (parallel_workers 0)",
    "mlserver-pw1": "MLServer (parallel_workers 1, default)",
}


def read(path):
    return open(path).read().strip() if os.path.exists(path) else ""


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--dir", "--servers", "--points", "--command"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--warmup", type=float, required=True)
    parser.add_argument("--h2load", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for server in args.servers.split():
        for point in args.points.split():
            c, n = map(int, point.split(":"))
            folder = os.path.join(args.dir, "raw", f"{server}-c{c}")
            if not os.path.exists(os.path.join(folder, "result.json")):
                rows.append({"server": server, "concurrency": c, "connections": n, "missing": True})
                continue
            r = json.load(open(os.path.join(folder, "result.json")))
            cpu = json.load(open(os.path.join(folder, "server_cpu.json")))["server_cpu_seconds"]
            sent = r["generator"]["requests_sent"]
            rows.append({
                "server": server, "concurrency": c, "connections": n, "throughput": r["achieved_rate"],
                "requests": r["requests"], "ok": r["ok"], "errors": r["errors"], "errors_by_code": r["errors_by_code"],
                "latency_us": r["latency_us"], "server_cpu_us_per_request": cpu / sent * 1e6 if sent else None,
                "generator_cpu_us_per_request": r["generator"]["cpu_us_per_request"],
            })
    h2rows = []
    if args.h2load:
        raw = os.path.join(args.dir, "raw")
        for server in args.servers.split():
            for point in args.points.split():
                c, n = map(int, point.split(":"))
                tag = f"{server}-c{c}-h2load"
                try:
                    h = h2load(raw, tag)
                except (OSError, AttributeError):
                    h2rows.append({"server": server, "concurrency": c, "connections": n, "missing": True})
                    continue
                cpu = json.load(open(os.path.join(raw, tag + ".server.json")))["server_cpu_seconds"]
                sent = h["requests"] + warm(open(os.path.join(raw, tag + ".out")).read())
                h.update({"server": server, "concurrency": c, "connections": n,
                          "server_cpu_us_per_request": cpu / sent * 1e6 if sent else None})
                lat = sorted(int(line.split()[2]) for line in read_log(raw, tag) if line.split()[1].startswith("2"))
                h["p999_us"] = lat[min(len(lat) - 1, int(0.999 * len(lat)))] if lat else None
                h2rows.append(h)
    json.dump({"command": args.command, "rows": rows, "h2load_rows": h2rows}, open(os.path.join(args.dir, "comparison.json"), "w"), indent=2)

    ms = lambda us: f"{us / 1000:.2f}"
    out = ["# Fulcrum beside KServe and MLServer: ranking_mlp, batch 1, gRPC, closed loop", "",
           f"- command: `flock /tmp/fulcrum-bench.lock {args.command.strip()}`",
           f"- every server alone on the machine while measured, one after the other in one run; `fulcrum loadtest` "
           f"closed loop at concurrency C over N gRPC connections, {args.duration:g} s measured after {args.warmup:g} s of warm-up "
           "(exact commands in commands.txt; raw result.json per run under raw/)",
           "- latency: closed loop, from each request's actual send to its response (ms); "
           "server CPU: user + system of the server's whole process tree (/proc) over the run, warm-up included, "
           "divided by every request sent",
           "- the machine is 2 cores shared with other jobs; the server, its onnxruntime and the load generator all "
           "run on the same 2 cores, so these are numbers for this box, not for a server with cores of its own", ""]
    out += ["```", read(os.path.join(args.dir, "environment.txt")), "```", "", "Servers:", ""]
    out += [f"- {line}" for line in read(os.path.join(args.dir, "servers.txt")).splitlines()]
    out += ["", "| server | C | N | req/s | p50 ms | p99 ms | p99.9 ms | max ms | ok | errors | server µs CPU/req | generator µs CPU/req |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        label = LABELS.get(row["server"], row["server"])
        if row.get("missing"):
            out.append(f"| {label} | {row['concurrency']} | {row['connections']} | — | — | — | — | — | — | — | — | — |")
            continue
        lat = row["latency_us"]
        errors = str(row["errors"]) + (f" ({', '.join(f'{k} {v}' for k, v in row['errors_by_code'].items())})" if row["errors"] else "")
        out.append(f"| {label} | {row['concurrency']} | {row['connections']} | {row['throughput']:.0f} | {ms(lat['p50'])} | "
                   f"{ms(lat['p99'])} | {ms(lat['p999'])} | {ms(lat['max'])} | {row['ok']} | {errors} | "
                   f"{row['server_cpu_us_per_request']:.0f} | {row['generator_cpu_us_per_request']:.1f} |")
    if h2rows:
        out += ["", "The same servers driven by h2load (one pre-encoded ModelInfer request, checked to answer OK first; "
                "`h2load -c N -m C/N`, same duration and warm-up; latency from its --log-file; server CPU over the run "
                "divided by every request, warm-up ones estimated from the rate):", "",
                "| server | C | N | req/s | p50 ms | p99 ms | p99.9 ms | non-2xx / failed | server µs CPU/req | h2load µs CPU/req |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for h in h2rows:
            label = LABELS.get(h["server"], h["server"])
            if h.get("missing"):
                out.append(f"| {label} | {h['concurrency']} | {h['connections']} | — | — | — | — | — | — | — |")
                continue
            bad = h["requests"] - (h["status_2xx"] or 0)
            out.append(f"| {label} | {h['concurrency']} | {h['connections']} | {h['throughput']:.0f} | {ms(h['p50_us'])} | "
                       f"{ms(h['p99_us'])} | {ms(h['p999_us'])} | {bad} / {h['failed']} | {h['server_cpu_us_per_request']:.0f} | "
                       f"{h['cpu_us_per_request']:.1f} |")
    failures = read(os.path.join(args.dir, "failures.txt"))
    if failures:
        out += ["", "Failures:", ""] + [f"- {line}" for line in failures.splitlines()]
    out.append("")
    open(os.path.join(args.dir, "summary.md"), "w").write("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
