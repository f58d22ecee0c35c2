"""The worker chooses its CPU kernels from the CPU's features, whatever launched it.

OpenBLAS picks its kernels when it loads, from the CPU's model number; on a CPU it does not know
(a VM whose model name is generic) it runs its SSE3 kernels. The worker re-executes itself with
OPENBLAS_CORETYPE set when that choice is weaker than the CPU's flags allow, and logs why.
These tests run the real executable as systemd or Kubernetes would (no variable set)."""
import json
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from conftest import RPC_TIMEOUT, binary, cli_env

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"
LEVELS = {"avx512": ["avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"],
          "avx2": ["avx", "avx2", "fma"], "avx": ["avx"]}
CORE_LEVEL = {"skylakex": "avx512", "cooperlake": "avx512", "sapphirerapids": "avx512", "haswell": "avx2",
              "zen": "avx2", "excavator": "avx2", "steamroller": "avx2", "sandybridge": "avx", "bulldozer": "avx",
              "piledriver": "avx"}
ORDER = ["sse", "avx", "avx2", "avx512"]


def cpu_level() -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    match = re.search(r"^flags\s*:(.*)$", text, re.M)
    if not match:
        return None
    flags = set(match.group(1).split())
    for level in ("avx512", "avx2", "avx"):
        if all(f in flags for f in LEVELS[level]):
            return level
    return "sse"


def start_worker(tmp_path: Path, *extra: str, env: dict):
    repo = tmp_path / "repo"
    if not repo.exists():
        import shutil
        shutil.copytree(EXAMPLES / "ranking_mlp", repo / "ranking_mlp")
    address_file = tmp_path / f"address-{time.monotonic_ns()}.json"
    proc = subprocess.Popen([binary("fulcrum-worker"), "--model-repository", str(repo), "--port", "0", "--threads", "1",
                             "--address-file", str(address_file), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (address_file.exists() and address_file.stat().st_size > 0):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"worker did not start (rc {proc.poll()}): {proc.communicate(timeout=10)[1]}")
        time.sleep(0.1)
    return proc, json.loads(address_file.read_text())


def stop(proc) -> str:
    proc.terminate()
    return proc.communicate(timeout=30)[1]


def kernels_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "CPU kernels:" in line]
    assert len(lines) == 1, stderr
    return lines[0]


def serves_ranking_mlp(address: str) -> None:
    client = grpcclient.InferenceServerClient(address)
    x = np.full((2, 256), 0.5, dtype=np.float32)
    inp = grpcclient.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    score = client.infer("ranking_mlp", [inp], client_timeout=RPC_TIMEOUT).as_numpy("score")
    # The published example's answer for 256 features of 0.5 (see README's `make run`).
    np.testing.assert_allclose(score.reshape(-1), [0.3306] * 2, atol=1e-3)


def clean_env() -> dict:
    env = cli_env()
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("FULCRUM_OPENBLAS_DETECTED", None)
    return env


@pytest.mark.skipif(cpu_level() is None, reason="no x86 flags in /proc/cpuinfo")
def test_a_worker_started_with_nothing_set_runs_the_kernels_its_cpu_allows(tmp_path):
    proc, address = start_worker(tmp_path, env=clean_env())
    try:
        serves_ranking_mlp(address["grpc"])
    finally:
        stderr = stop(proc)
    line = kernels_line(stderr)
    core = re.search(r"CPU kernels: OpenBLAS (\S+)", line).group(1)
    level = CORE_LEVEL.get(core.lower(), "sse")
    assert ORDER.index(level) >= ORDER.index(cpu_level()), line
    assert int(address["pid"]) == proc.pid, "a restart must keep the pid a supervisor watches"


def test_an_explicit_core_type_restarts_the_worker_in_place(tmp_path):
    # Prescott (SSE3) runs on every x86-64 CPU and differs from what OpenBLAS detects on any
    # recent one, so this exercises the re-execution wherever the tests run.
    proc, address = start_worker(tmp_path, "--cpu-kernels", "Prescott", env=clean_env())
    try:
        serves_ranking_mlp(address["grpc"])
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert b"OPENBLAS_CORETYPE=Prescott" in environ
    finally:
        stderr = stop(proc)
    line = kernels_line(stderr)
    assert "OpenBLAS Prescott (SSE): as asked (--cpu-kernels Prescott)" in line, line
    assert int(address["pid"]) == proc.pid


def test_an_operators_core_type_is_kept(tmp_path):
    proc, address = start_worker(tmp_path, env=clean_env() | {"OPENBLAS_CORETYPE": "Prescott"})
    try:
        serves_ranking_mlp(address["grpc"])
    finally:
        stderr = stop(proc)
    assert "OpenBLAS Prescott (SSE): set by OPENBLAS_CORETYPE=Prescott" in kernels_line(stderr)


def run_worker_on_empty_repository(tmp_path, *arguments: str, env: dict | None = None):
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    return subprocess.run([binary("fulcrum-worker"), "--model-repository", str(repo), *arguments],
                          capture_output=True, text=True, timeout=60, env=env or clean_env(), stdin=subprocess.DEVNULL)


def test_bad_requests_are_refused_before_start(tmp_path):
    proc = run_worker_on_empty_repository(tmp_path, "--cpu-kernels", "fastest")
    assert proc.returncode != 0 and "--cpu-kernels: 'fastest'" in proc.stderr, proc.stderr
    if cpu_level() in ("avx2", "avx", "sse"):
        proc = run_worker_on_empty_repository(tmp_path, "--port", "0", env=clean_env() | {"OPENBLAS_CORETYPE": "SkylakeX"})
        assert proc.returncode == 1 and "illegal instruction" in proc.stderr, proc.stderr


MICROKERNELS = {"avx512": "AVX-512", "avx2": "AVX2", "off": "off"}


@pytest.mark.parametrize("kernels", ["avx512", "avx2", "off"])
def test_each_microkernel_set_serves_the_same_answers_as_onnxruntime(tmp_path, kernels):
    # Fulcrum's own matrix kernels (weights packed at load) for every set this CPU has; `off` is
    # OpenBLAS alone. A set the CPU lacks is lowered to what it has, never an illegal instruction.
    import onnxruntime as ort
    level = cpu_level()
    proc, address = start_worker(tmp_path, "--microkernels", kernels, env=clean_env())
    try:
        x = np.random.default_rng(5).standard_normal((5, 256)).astype(np.float32)
        client = grpcclient.InferenceServerClient(address["grpc"])
        inp = grpcclient.InferInput("features", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        score = client.infer("ranking_mlp", [inp], client_timeout=RPC_TIMEOUT).as_numpy("score")
    finally:
        stderr = stop(proc)
    expected = ort.InferenceSession(str(EXAMPLES / "ranking_mlp" / "1" / "model.onnx"),
                                    providers=["CPUExecutionProvider"]).run(None, {"features": x})[0]
    np.testing.assert_allclose(score, expected, rtol=1e-5, atol=1e-6)
    line = kernels_line(stderr)
    chosen = re.search(r"Fulcrum microkernels: ([^,\s]+)", line).group(1)
    if kernels == "off" or level in ("avx", "sse", None):
        assert chosen == "off", line
    elif kernels == "avx512" and level != "avx512":
        assert chosen == "AVX2", line
    else:
        assert chosen == MICROKERNELS[kernels], line


def test_an_unknown_microkernel_set_is_refused(tmp_path):
    proc = run_worker_on_empty_repository(tmp_path, "--microkernels", "fastest")
    assert proc.returncode != 0 and "--microkernels: 'fastest'" in proc.stderr, proc.stderr
