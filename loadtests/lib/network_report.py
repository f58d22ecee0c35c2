"""Writes the network scenario's report (loadtests/network): summary.md and network.json from
the runs under OUTPUT/raw/delay<D>-batch<B>/result.json."""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

FEATURES = 256  # ranking_mlp's input width (FP32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--delays", required=True)
    parser.add_argument("--batches", required=True)
    parser.add_argument("--rate-mbit", type=float, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--command", required=True)
    o = parser.parse_args()
    delays = [float(d) for d in o.delays.split()]
    batches = [int(b) for b in o.batches.split()]

    rows = []
    for d in delays:
        for b in batches:
            name = f"delay{o.delays.split()[delays.index(d)]}-batch{b}"
            r = json.loads((o.output / "raw" / name / "result.json").read_text())
            parts = {k: v["mean"] / 1000 for k, v in (r.get("breakdown_us") or {}).items()}
            total = sum(parts.values())
            request_bytes = b * FEATURES * 4
            mbit = r["achieved_rate"] * request_bytes * 8 / 1e6
            rows.append({
                "delay_ms": d, "batch": b, "request_tensor_bytes": request_bytes,
                "req_per_s": r["achieved_rate"], "samples_per_s": r["achieved_rate"] * b,
                "p50_ms": r["latency_us"]["p50"] / 1000, "p99_ms": r["latency_us"]["p99"] / 1000,
                "errors": r["errors"], "breakdown_ms": parts,
                "network_share": parts.get("network", 0) / total if total else None,
                "request_mbit_per_s": mbit, "cap_share": mbit / o.rate_mbit,
            })
    (o.output / "network.json").write_text(json.dumps({"command": o.command, "rate_mbit": o.rate_mbit, "rows": rows}, indent=2))

    lines = [
        f"# The network between frontend and worker ({datetime.date.today()})", "",
        f"Command: `sudo {o.command}`; each run's `fulcrum loadtest` line in commands.txt, its report under raw/.", "",
        "Two hosts (network namespaces joined by a veth pair): the balancer, the frontend, the load generator and "
        "a delay proxy on one, a worker on the other, advertising the proxy's address so every frontend → worker "
        f"call crosses it. The link is capped at {o.rate_mbit:g} Mbit/s in each direction (`tc tbf`); the proxy adds "
        "the given delay to every byte in each direction (this kernel has no netem), so a round trip grows by twice "
        f"the delay. `ranking_mlp`, closed loop, {o.concurrency} requests in flight, request tensor = batch × "
        f"{FEATURES} FP32. All processes share the machine's 2 cores.", "",
        "## Where the time goes as the delay grows", "",
        "Means from the response's breakdown (ms); `network` is the frontend → worker round trip minus the "
        "worker's own time.", "",
        "| batch | delay ms (each way) | req/s | p50 ms | p99 ms | frontend | network | queue | compute | network share |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["batch"], r["delay_ms"])):
        p = r["breakdown_ms"]
        lines.append(
            f"| {r['batch']} | {r['delay_ms']:g} | {r['req_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{p.get('frontend', 0):.2f} | {p.get('network', 0):.2f} | {p.get('queue', 0):.2f} | {p.get('compute', 0):.2f} | "
            f"{(r['network_share'] or 0) * 100:.0f}% |")
    lines += [
        "", f"## Payload against the {o.rate_mbit:g} Mbit/s cap", "",
        "Request tensor bytes per second across the link (responses are 4 bytes a sample) against the cap.", "",
        "| delay ms | batch | request KiB | req/s | samples/s | request Mbit/s | share of cap |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["delay_ms"], r["batch"])):
        lines.append(
            f"| {r['delay_ms']:g} | {r['batch']} | {r['request_tensor_bytes'] / 1024:.0f} | {r['req_per_s']:.0f} | "
            f"{r['samples_per_s']:.0f} | {r['request_mbit_per_s']:.1f} | {r['cap_share'] * 100:.0f}% |")
    errors = sum(r["errors"] for r in rows)
    lines += ["", f"Errors over all runs: {errors}."]
    (o.output / "summary.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
