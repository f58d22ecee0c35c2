"""The network scenario (issue 7): `loadtests/network` puts frontend and worker on two hosts
(network namespaces and a veth pair), caps the link with `tc tbf` and adds a one-way delay with
loadtests/lib/delay_proxy.py. A short run with no delay and with 5 ms each way must serve every
request and show the delay in the breakdown's network part: at least the 10 ms of the added
round trip, on top of what the undelayed run measured. Needs root (skipped otherwise)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from conftest import BIN_DIR, REPO_ROOT, binary

SCRIPT = REPO_ROOT / "loadtests" / "network"


@pytest.mark.skipif(os.geteuid() != 0, reason="the network scenario needs root (ip netns, tc); run the suite as root")
@pytest.mark.skipif(shutil.which("tc") is None or shutil.which("ip") is None, reason="iproute2 (ip, tc) is not installed")
def test_added_delay_shows_in_the_network_part(tmp_path):
    for name in ("fulcrum", "fulcrum-frontend", "fulcrum-worker", "fulcrum-balancer"):
        binary(name)
    out = tmp_path / "network"
    env = dict(os.environ, FULCRUM_BIN_DIR=str(BIN_DIR))
    r = subprocess.run([str(SCRIPT), "--delays", "0 5", "--batches", "1 16", "--seconds", "2", "--concurrency", "2",
                        "--rate-mbit", "100", "--output", str(out)],
                       capture_output=True, text=True, timeout=240, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"loadtests/network failed:\n{r.stdout}\n{r.stderr}"
    report = json.loads((out / "network.json").read_text())
    rows = {(row["delay_ms"], row["batch"]): row for row in report["rows"]}
    assert set(rows) == {(0, 1), (0, 16), (5, 1), (5, 16)}
    for row in rows.values():
        assert row["errors"] == 0 and row["req_per_s"] > 0, row
    for batch in (1, 16):
        near, far = rows[(0, batch)], rows[(5, batch)]
        assert far["breakdown_ms"]["network"] >= 10.0, far
        assert far["breakdown_ms"]["network"] > near["breakdown_ms"]["network"], (near, far)
        assert far["network_share"] > near["network_share"], (near, far)
    summary = (out / "summary.md").read_text()
    assert "## Where the time goes as the delay grows" in summary and "## Payload against the 100 Mbit/s cap" in summary
    # Nothing is left behind: the script removes its namespaces on exit.
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "fnet" not in names, names
