"""Shared helpers for Fulcrum's integration tests.

The tests drive the real executables (`fulcrum up` starts a balancer, a frontend and N workers
as child processes) through the real tritonclient gRPC client. Binaries are taken from
$FULCRUM_BIN_DIR (default .build/debug). Every cluster listens on ports chosen by the OS
(port 0) and learns them from the endpoints file that `fulcrum up` writes when ready.

Environment:
  FULCRUM_BIN_DIR         folder with fulcrum, fulcrum-frontend, fulcrum-worker, fulcrum-balancer
  FULCRUM_START_TIMEOUT   seconds to wait for a cluster to become ready (default 180)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.utils
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples" / "models"
_bin = Path(os.environ.get("FULCRUM_BIN_DIR") or ".build/debug")
BIN_DIR = _bin if _bin.is_absolute() else REPO_ROOT / _bin
BINARIES = ("fulcrum", "fulcrum-frontend", "fulcrum-worker", "fulcrum-balancer")

START_TIMEOUT = float(os.environ.get("FULCRUM_START_TIMEOUT", "180"))
STOP_TIMEOUT = 20.0
RPC_TIMEOUT = 30.0  # seconds, for every client call (a hang is a failure, not a stuck suite)
CLI_TIMEOUT = 60.0
MiB = 1 << 20

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.max_receive_message_length", 2**31 - 1),
]


# --------------------------------------------------------------------------------------------
# processes


def binary(name: str) -> str:
    path = BIN_DIR / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is missing: build the package first (`swift build`) "
                    f"or point FULCRUM_BIN_DIR at the folder holding {', '.join(BINARIES)}",
                    pytrace=False)
    return str(path)


def cli_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    return env


def process_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat[stat.rindex(b")") + 2:][:1]
    return state not in (b"Z", b"X")


def process_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is pgid."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rindex(b")") + 2:].split()
        if rest and rest[0] not in (b"Z", b"X") and int(rest[2]) == pgid:
            members.append(int(entry))
    return members


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"<{path} unreadable>"
    return "\n".join(text.splitlines()[-lines:])


class ClusterError(Exception):
    pass


class Cluster:
    """One `fulcrum up` process tree on loopback."""

    def __init__(self, name: str, workdir: Path, model_repository: Path, workers: int = 1,
                 max_message_bytes: int | None = None, extra_args: tuple = (),
                 balancer_port: int = 0):
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.model_repository = Path(model_repository)
        self.workers = workers
        self.max_message_bytes = max_message_bytes
        self.extra_args = list(extra_args)
        self.balancer_port = balancer_port
        self.endpoints_file = self.workdir / "endpoints.json"
        self.stdout_path = self.workdir / "fulcrum-up.stdout"
        self.stderr_path = self.workdir / "fulcrum-up.stderr"
        self.proc: subprocess.Popen | None = None
        self.endpoints: dict = {}
        self.exit_code: int | None = None

    # ---- lifecycle

    def command(self) -> list[str]:
        cmd = [binary("fulcrum"), "up",
               "--model-repository", str(self.model_repository),
               "--workers", str(self.workers),
               "--grpc-port", "0", "--http-port", "0", "--balancer-port", str(self.balancer_port),
               "--endpoints-file", str(self.endpoints_file)]
        if self.max_message_bytes is not None:
            cmd += ["--max-message-bytes", str(self.max_message_bytes)]
        return cmd + self.extra_args

    def spawn(self) -> None:
        for b in BINARIES:
            binary(b)
        if self.endpoints_file.exists():
            self.endpoints_file.unlink()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            # A new session: the whole tree can be killed as a group as a last resort.
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, cwd=self.workdir, env=cli_env(),
                                         start_new_session=True)
        _LIVE_CLUSTERS.append(self)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> dict:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                raise ClusterError(f"cluster {self.name}: `fulcrum up` exited with {code} before "
                                   f"it was ready\n{self.log_tail()}")
            if self.endpoints_file.exists():
                try:
                    self.endpoints = json.loads(self.endpoints_file.read_text())
                    return self.endpoints
                except (json.JSONDecodeError, OSError):
                    pass  # the write is atomic; tolerate a non-atomic one for a moment
            if time.monotonic() >= deadline:
                raise ClusterError(f"cluster {self.name}: not ready after {timeout:.0f} s "
                                   f"(no {self.endpoints_file})\n{self.log_tail()}")
            time.sleep(0.1)

    def start(self) -> "Cluster":
        self.spawn()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def child_pids(self) -> list[int]:
        pids = []
        for key in ("balancer_pid", "frontend_pid"):
            if isinstance(self.endpoints.get(key), int):
                pids.append(self.endpoints[key])
        for w in self.endpoints.get("workers") or []:
            if isinstance(w, dict) and isinstance(w.get("pid"), int):
                pids.append(w["pid"])
        return pids

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int | None:
        """Stops the cluster: sig to `fulcrum up`, then SIGKILL to whatever is left."""
        if self.proc is None:
            return None
        try:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(10)
            self.exit_code = self.proc.returncode
            # Last resort: anything of ours still running (children left behind, or children
            # that moved to their own process group) is killed.
            for pid in group_members(self.proc.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            for pid in self.child_pids():
                if process_alive(pid) and "fulcrum" in process_cmdline(pid):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
        finally:
            if self in _LIVE_CLUSTERS:
                _LIVE_CLUSTERS.remove(self)
        return self.exit_code

    def log_tail(self, lines: int = 150) -> str:
        return (f"--- {self.command()}\n--- stdout ({self.stdout_path}):\n"
                f"{_tail(self.stdout_path, 40)}\n--- stderr ({self.stderr_path}):\n"
                f"{_tail(self.stderr_path, lines)}")

    # ---- addresses and clients

    @property
    def grpc_url(self) -> str:
        return self.endpoints["grpc"]

    @property
    def balancer_url(self) -> str:
        return self.endpoints["balancer"]

    def client(self) -> grpcclient.InferenceServerClient:
        return grpcclient.InferenceServerClient(url=self.grpc_url)

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.grpc_url, options=GRPC_OPTIONS)

    def stub(self) -> service_pb2_grpc.GRPCInferenceServiceStub:
        return service_pb2_grpc.GRPCInferenceServiceStub(self.channel())

    @property
    def tls_dir(self) -> str | None:
        """The cluster's certificate folder (`fulcrum up` without --insecure), or None."""
        return self.endpoints.get("tls_dir")

    def member_channel(self, address: str, role: str = "admin") -> grpc.Channel:
        """A channel to a port inside the cluster (a worker's, the balancer's): mutual TLS with
        ROLE's certificate from the cluster's folder, plaintext for an --insecure cluster."""
        if not self.tls_dir:
            return grpc.insecure_channel(address, options=GRPC_OPTIONS)
        return grpc.secure_channel(address, member_credentials(self.tls_dir, role), options=GRPC_OPTIONS)

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
        return run_cli(*args, timeout=timeout)

    def status(self) -> dict:
        """`fulcrum status --balancer ADDR --json`, parsed."""
        r = self.cli("status", "--balancer", self.balancer_url, "--json")
        assert r.returncode == 0, f"fulcrum status failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        try:
            return json.loads(r.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"fulcrum status --json printed invalid JSON ({e}):\n{r.stdout}")

    def worker_ids(self) -> set[str]:
        return {w["id"] for w in self.status()["workers"]}


def member_credentials(folder: str, role: str) -> grpc.ChannelCredentials:
    """gRPC client credentials with ROLE's certificate of a `fulcrum certs` folder."""
    base = Path(folder)
    return grpc.ssl_channel_credentials(root_certificates=(base / "ca.pem").read_bytes(),
                                        private_key=(base / f"{role}-key.pem").read_bytes(),
                                        certificate_chain=(base / f"{role}.pem").read_bytes())


def run_cli(*args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([binary("fulcrum"), *args], capture_output=True, text=True,
                          timeout=timeout, env=cli_env(), stdin=subprocess.DEVNULL)


_LIVE_CLUSTERS: list[Cluster] = []

# Mesa's CPU Vulkan driver (scripts/bootstrap installs mesa-vulkan-drivers).
LAVAPIPE = Path("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json")


def vulkan_available() -> bool:
    return LAVAPIPE.exists() or "VK_DRIVER_FILES" in os.environ


@contextlib.contextmanager
def lavapipe_unless_chosen() -> Iterator[None]:
    """VK_DRIVER_FILES set to lavapipe for the processes started meanwhile, unless a driver is chosen already."""
    saved = os.environ.get("VK_DRIVER_FILES")
    if saved is None:
        os.environ["VK_DRIVER_FILES"] = str(LAVAPIPE)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("VK_DRIVER_FILES", None)


@contextlib.contextmanager
def running_vulkan_cluster(tmp_path_factory, name: str, **kwargs) -> Iterator[Cluster]:
    """A cluster whose workers run `--backend vulkan` on device 0 (lavapipe unless chosen); skips without a driver."""
    if not vulkan_available():
        pytest.skip("no Vulkan driver: scripts/bootstrap installs mesa-vulkan-drivers (lavapipe)")
    with lavapipe_unless_chosen(), running_cluster(tmp_path_factory, name, extra_args=("--backend", "vulkan", "--device", "0"),
                                                   **kwargs) as c:
        yield c


@contextlib.contextmanager
def running_cluster(tmp_path_factory, name: str, **kwargs) -> Iterator[Cluster]:
    cluster = Cluster(name, tmp_path_factory.mktemp(f"cluster-{name}"), **kwargs)
    error = None
    try:
        cluster.start()
    except ClusterError as e:
        error = str(e)
    if error is not None:
        pytest.fail(error, pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the log of every cluster that is still running."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for cluster in list(_LIVE_CLUSTERS):
            report.sections.append((f"fulcrum cluster '{cluster.name}' log", cluster.log_tail()))


def pytest_sessionfinish(session, exitstatus):
    for cluster in list(_LIVE_CLUSTERS):  # interrupted runs: never leave processes behind
        cluster.stop(timeout=5)


# --------------------------------------------------------------------------------------------
# model repositories and references

BROKEN_CONFIG = """\
name: "broken"
platform: "onnxruntime_onnx"
max_batch_size: 4
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] } ]
"""


def simple_inputs() -> list:
    """The `simple` model's two INT32 [1, 16] inputs (0..15 each), for tritonclient.grpc."""
    inputs = []
    for name in ("INPUT0", "INPUT1"):
        t = grpcclient.InferInput(name, [1, 16], "INT32")
        t.set_data_from_numpy(np.arange(16, dtype=np.int32).reshape(1, 16))
        inputs.append(t)
    return inputs


def make_repository(dest: Path, broken: bool = False) -> Path:
    """A copy of examples/models (configs and models only), plus a `broken` model whose
    model.onnx is garbage bytes when broken=True."""
    for model in ("simple", "ranking_mlp"):
        src = EXAMPLES / model
        assert (src / "1" / "model.onnx").is_file(), (
            f"{src}/1/model.onnx missing: run .venv/bin/python examples/models/generate.py")
        shutil.copytree(src, dest / model)
    if broken:
        (dest / "broken" / "1").mkdir(parents=True)
        (dest / "broken" / "config.pbtxt").write_text(BROKEN_CONFIG)
        # An overlong varint right at the start: no protobuf parser accepts this.
        (dest / "broken" / "1" / "model.onnx").write_bytes(b"\xff" * 64 + b"this is not an ONNX model\n")
    return dest


class Reference:
    """onnxruntime on the same .onnx files the cluster serves."""

    def __init__(self):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self._sessions = {
            m: ort.InferenceSession(str(EXAMPLES / m / "1" / "model.onnx"), opts,
                                    providers=["CPUExecutionProvider"])
            for m in ("simple", "ranking_mlp")
        }
        self._lock = threading.Lock()

    def simple(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            o0, o1 = self._sessions["simple"].run(["OUTPUT0", "OUTPUT1"], {"INPUT0": a, "INPUT1": b})
        return o0, o1

    def ranking_mlp(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            (score,) = self._sessions["ranking_mlp"].run(["score"], {"features": x})
        return score


@pytest.fixture(scope="session")
def reference() -> Reference:
    return Reference()


# --------------------------------------------------------------------------------------------
# requests

SIMPLE_DIM = 16
SIMPLE_MAX_BATCH = 8
MLP_FEATURES = 256
MLP_MAX_BATCH = 64
TIMING_KEYS = ("fulcrum.frontend_us", "fulcrum.network_us", "fulcrum.queue_us", "fulcrum.compute_us")


def simple_data(rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray]:
    a = rng.integers(-100_000, 100_000, size=(batch, SIMPLE_DIM), dtype=np.int32)
    b = rng.integers(-100_000, 100_000, size=(batch, SIMPLE_DIM), dtype=np.int32)
    return a, b


def mlp_data(rng: np.random.Generator, batch: int) -> np.ndarray:
    return rng.standard_normal((batch, MLP_FEATURES)).astype(np.float32)


def tensor(name: str, array: np.ndarray, datatype: str | None = None) -> grpcclient.InferInput:
    dt = datatype or tritonclient.utils.np_to_triton_dtype(array.dtype)
    t = grpcclient.InferInput(name, list(array.shape), dt)
    t.set_data_from_numpy(array)
    return t


def infer_simple(client, a, b, **kwargs):
    return client.infer("simple", [tensor("INPUT0", a), tensor("INPUT1", b)],
                        client_timeout=kwargs.pop("client_timeout", RPC_TIMEOUT), **kwargs)


def infer_mlp(client, x, **kwargs):
    return client.infer("ranking_mlp", [tensor("features", x)],
                        client_timeout=kwargs.pop("client_timeout", RPC_TIMEOUT), **kwargs)


def check_simple(result, a, b, reference: Reference) -> None:
    o0, o1 = reference.simple(a, b)
    got0, got1 = result.as_numpy("OUTPUT0"), result.as_numpy("OUTPUT1")
    assert got0 is not None and got1 is not None, "OUTPUT0/OUTPUT1 missing (outputs must be raw)"
    assert got0.dtype == np.int32 and got1.dtype == np.int32
    np.testing.assert_array_equal(got0, o0)
    np.testing.assert_array_equal(got1, o1)


def check_mlp(result, x, reference: Reference) -> None:
    got = result.as_numpy("score")
    assert got is not None, "score missing (outputs must be raw)"
    assert got.dtype == np.float32
    assert got.shape == (x.shape[0], 1)
    np.testing.assert_allclose(got, reference.ranking_mlp(x), rtol=1e-5, atol=1e-6)


def response_parameters(result) -> dict:
    """{name: python value} of a ModelInferResponse's parameters (with the oneof kind)."""
    params = {}
    for key, p in result.get_response().parameters.items():
        kind = p.WhichOneof("parameter_choice")
        params[key] = (kind, getattr(p, kind) if kind else None)
    return params


def raw_input(name: str, datatype: str, shape) -> service_pb2.ModelInferRequest.InferInputTensor:
    t = service_pb2.ModelInferRequest.InferInputTensor()
    t.name, t.datatype = name, datatype
    t.shape.extend(shape)
    return t


def expect_error(call: Callable[[], object], code: str, *fragments: str) -> InferenceServerException:
    """call() must raise InferenceServerException with gRPC status `code` (e.g. "NOT_FOUND")
    and a message containing every fragment (case-insensitively; a compiled regex is searched)."""
    with pytest.raises(InferenceServerException) as info:
        call()
    e = info.value
    message = e.message() or ""
    assert e.status() == f"StatusCode.{code}", (
        f"expected {code}, got {e.status()}: {message!r}")
    _check_fragments(message, fragments)
    return e


def expect_rpc_error(call: Callable[[], object], code: str, *fragments: str) -> grpc.RpcError:
    """Like expect_error, for raw grpc stubs."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    e = info.value
    message = e.details() or ""
    assert e.code() == getattr(grpc.StatusCode, code), (
        f"expected {code}, got {e.code()}: {message!r}")
    _check_fragments(message, fragments)
    return e


def _check_fragments(message: str, fragments) -> None:
    for f in fragments:
        if isinstance(f, re.Pattern):
            assert f.search(message), f"message {message!r} does not match {f.pattern!r}"
        else:
            assert f.lower() in message.lower(), f"message {message!r} does not mention {f!r}"


def run_threads(targets: list[Callable[[], None]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    return threads


def join_all(threads: list[threading.Thread], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads still running after {timeout} s: {stuck}"

