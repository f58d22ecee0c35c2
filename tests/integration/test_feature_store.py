"""The feature_lookup processor against a real PostgreSQL server (scripts/feature-store starts a
throwaway one on loopback, scripts/seed-feature-store.py fills it), and the `recommend` pipeline
of examples/models built on it: user and item features from the store, the recommender model in
the pool, the top 10 ranked in the frontend — checked against onnxruntime on the same vectors.
Also: unknown ids, a store that is down (UNAVAILABLE within the timeout, then recovery by itself
once it is back), and a cache that never serves past its TTL."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from conftest import (EXAMPLES, REPO_ROOT, RPC_TIMEOUT, expect_error, make_repository, response_parameters,
                      running_cluster, tensor, wait_until)

STORE = REPO_ROOT / "scripts" / "feature-store"


def _seed_module():
    spec = importlib.util.spec_from_file_location("seed_feature_store", REPO_ROOT / "scripts" / "seed-feature-store.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SEED = _seed_module()


def psql(port: int, sql: str) -> str:
    return subprocess.run(["psql", "-X", "-tA", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port),
                           "-U", "fulcrum", "-d", "features", "-c", sql],
                          check=True, capture_output=True, text=True, timeout=30).stdout.strip()


@pytest.fixture(scope="module")
def store():
    # Directly under /tmp: as root, the server runs as the postgres user, which cannot enter
    # pytest's private temporary folders.
    folder = Path(tempfile.mkdtemp(prefix="fulcrum-feature-store-"))
    started = subprocess.run([str(STORE), "start", str(folder)], capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        pytest.fail(f"cannot start PostgreSQL (scripts/bootstrap installs it): {started.stderr}", pytrace=False)
    port = int(started.stdout.strip())
    try:
        subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "python"), str(REPO_ROOT / "scripts" / "seed-feature-store.py"),
                        "--port", str(port)], check=True, timeout=120)
        yield folder, port
    finally:
        subprocess.run([str(STORE), "stop", str(folder)], timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


# Processors beside the examples: a short-TTL copy of item_features, and a lookup of a store that
# is never there (a closed port).
EXTRA = {
    "fresh_items": """
platform: "fulcrum_feature_lookup"
max_batch_size: 0
input [ { name: "ids" data_type: TYPE_INT64 dims: [ -1 ] } ]
output [ { name: "features" data_type: TYPE_FP32 dims: [ -1, 64 ] } ]
parameters { key: "url_env" value: { string_value: "FULCRUM_FEATURE_STORE_URL" } }
parameters { key: "table" value: { string_value: "item_features" } }
parameters { key: "key_column" value: { string_value: "item_id" } }
parameters { key: "value_column" value: { string_value: "features" } }
parameters { key: "cache_ttl_ms" value: { string_value: "4000" } }
""",
    "nowhere": """
platform: "fulcrum_feature_lookup"
max_batch_size: 0
input [ { name: "ids" data_type: TYPE_STRING dims: [ -1 ] } ]
output [ { name: "features" data_type: TYPE_FP32 dims: [ -1, 4 ] } ]
parameters { key: "host" value: { string_value: "127.0.0.1" } }
parameters { key: "port" value: { string_value: "%d" } }
parameters { key: "database" value: { string_value: "features" } }
parameters { key: "user" value: { string_value: "fulcrum" } }
parameters { key: "table" value: { string_value: "anything" } }
parameters { key: "key_column" value: { string_value: "id" } }
parameters { key: "value_column" value: { string_value: "v" } }
parameters { key: "timeout_ms" value: { string_value: "300" } }
""",
    "silent": """
platform: "fulcrum_feature_lookup"
max_batch_size: 0
input [ { name: "ids" data_type: TYPE_INT64 dims: [ -1 ] } ]
output [ { name: "features" data_type: TYPE_FP32 dims: [ -1, 4 ] } ]
parameters { key: "host" value: { string_value: "127.0.0.1" } }
parameters { key: "port" value: { string_value: "%s" } }
parameters { key: "database" value: { string_value: "features" } }
parameters { key: "user" value: { string_value: "fulcrum" } }
parameters { key: "tls" value: { string_value: "disable" } }
parameters { key: "table" value: { string_value: "anything" } }
parameters { key: "key_column" value: { string_value: "id" } }
parameters { key: "value_column" value: { string_value: "v" } }
parameters { key: "timeout_ms" value: { string_value: "400" } }
""",
    "bad_table": """
platform: "fulcrum_feature_lookup"
max_batch_size: 0
input [ { name: "ids" data_type: TYPE_INT64 dims: [ -1 ] } ]
output [ { name: "features" data_type: TYPE_FP32 dims: [ -1, 4 ] } ]
parameters { key: "url_env" value: { string_value: "FULCRUM_FEATURE_STORE_URL" } }
parameters { key: "table" value: { string_value: "items; DROP TABLE users" } }
parameters { key: "key_column" value: { string_value: "id" } }
parameters { key: "value_column" value: { string_value: "v" } }
""",
}


def closed_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def silent_server():
    """A TCP server that accepts connections and never answers: a store that hangs."""
    import socket
    import threading
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    for connection in held:
        connection.close()
    server.close()


@pytest.fixture(scope="module")
def repo(tmp_path_factory, silent_server) -> Path:
    folder = make_repository(tmp_path_factory.mktemp("features"))
    for name in ("recommender", "rank_top", "user_features", "item_features", "recommend"):
        shutil.copytree(EXAMPLES / name, folder / name)
    for name, text in EXTRA.items():
        (folder / name / "1").mkdir(parents=True)
        (folder / name / "config.pbtxt").write_text(text.replace("%d", str(closed_port())).replace("%s", str(silent_server)))
    return folder


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, repo, store):
    _, port = store
    previous = os.environ.get("FULCRUM_FEATURE_STORE_URL")
    os.environ["FULCRUM_FEATURE_STORE_URL"] = f"postgresql://fulcrum@127.0.0.1:{port}/features?sslmode=disable"
    try:
        with running_cluster(tmp_path_factory, "features", model_repository=repo, workers=1) as c:
            yield c
    finally:
        if previous is None:
            os.environ.pop("FULCRUM_FEATURE_STORE_URL", None)
        else:
            os.environ["FULCRUM_FEATURE_STORE_URL"] = previous


@pytest.fixture(scope="module")
def client(cluster):
    return cluster.client()


def reference_top(repo: Path, user_id: int, item_ids: np.ndarray, k: int = 10):
    users, items = SEED.vectors()
    features = np.stack([items[i - 1] if 1 <= i <= len(items) else np.zeros(items.shape[1], np.float32) for i in item_ids])
    session = ort.InferenceSession(str(repo / "recommender" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    (scores,) = session.run(["score"], {"user": users[user_id - 1:user_id], "items": features})
    order = np.argsort(-scores[:, 0], kind="stable")[:k]
    return item_ids[order], scores[order, 0]


def test_recommend_ranks_candidates_from_the_store(client, repo):
    rng = np.random.default_rng(5)
    for user_id in (1, 17, 1000):
        item_ids = rng.choice(np.arange(1, 5001), size=100, replace=False).astype(np.int64)
        result = client.infer("recommend", [tensor("user_id", np.array([user_id], dtype=np.int64)), tensor("item_ids", item_ids)],
                              client_timeout=RPC_TIMEOUT)
        ids, scores = reference_top(repo, user_id, item_ids)
        np.testing.assert_array_equal(result.as_numpy("top_ids"), ids)
        np.testing.assert_allclose(result.as_numpy("top_scores"), scores, rtol=1e-5, atol=1e-6)
    params = response_parameters(result)
    for key in ("fulcrum.step.1.user_features_us", "fulcrum.step.2.item_features_us",
                "fulcrum.step.3.recommender_us", "fulcrum.step.4.rank_top_us"):
        assert key in params, params


def test_unknown_items_get_zeros_and_an_unknown_user_is_refused(client, repo):
    item_ids = np.array([3, 99999, 12], dtype=np.int64)
    direct = client.infer("item_features", [tensor("item_ids", item_ids)], client_timeout=RPC_TIMEOUT).as_numpy("items")
    _, items = SEED.vectors()
    np.testing.assert_array_equal(direct[0], items[2])
    np.testing.assert_array_equal(direct[1], np.zeros(64, np.float32))
    np.testing.assert_array_equal(direct[2], items[11])
    result = client.infer("recommend", [tensor("user_id", np.array([3], dtype=np.int64)), tensor("item_ids", item_ids)],
                          client_timeout=RPC_TIMEOUT)
    ids, _ = reference_top(repo, 3, item_ids)
    np.testing.assert_array_equal(result.as_numpy("top_ids"), ids)
    expect_error(lambda: client.infer("recommend", [tensor("user_id", np.array([123456], dtype=np.int64)),
                                                    tensor("item_ids", item_ids)], client_timeout=RPC_TIMEOUT),
                 "INVALID_ARGUMENT", "step 1 ('user_features')", "123456", "user_features")
    expect_error(lambda: client.infer("item_features", [tensor("item_ids", np.array([1.5], dtype=np.float32))],
                                      client_timeout=RPC_TIMEOUT),
                 "INVALID_ARGUMENT", "FP32")


def test_configuration_errors_are_reported_not_fatal(client):
    index = {m.name: m for m in client.get_model_repository_index(client_timeout=RPC_TIMEOUT).models}
    assert index["bad_table"].state == "UNAVAILABLE"
    assert "is not a plain SQL name" in index["bad_table"].reason
    assert index["recommend"].state == "READY"


def test_a_store_that_is_not_there_fails_within_the_timeout(client):
    started = time.monotonic()
    expect_error(lambda: client.infer("nowhere", [tensor("ids", np.array([b"a", b"b"], dtype=np.object_), "BYTES")],
                                      client_timeout=RPC_TIMEOUT),
                 "UNAVAILABLE", "feature store")
    # Bounded by timeout_ms (300 ms), not by a connect timeout or the client's deadline: a
    # generous bound, since this is a correctness property (no hang), not a speed claim.
    assert time.monotonic() - started < 10


def test_a_store_that_hangs_fails_within_the_timeout_not_never(client):
    for _ in range(2):  # the second request finds the pool still waiting on the first connection
        started = time.monotonic()
        expect_error(lambda: client.infer("silent", [tensor("ids", np.array([1, 2], dtype=np.int64))], client_timeout=RPC_TIMEOUT),
                     "UNAVAILABLE", "did not answer within 400 ms")
        assert time.monotonic() - started < 10


def test_recommend_over_http(cluster, repo):
    import tritonclient.http as httpclient
    http = httpclient.InferenceServerClient(cluster.endpoints["http"], network_timeout=RPC_TIMEOUT)
    item_ids = np.arange(200, 260, dtype=np.int64)
    user = httpclient.InferInput("user_id", [1], "INT64")
    user.set_data_from_numpy(np.array([9], dtype=np.int64), binary_data=False)
    items = httpclient.InferInput("item_ids", [len(item_ids)], "INT64")
    items.set_data_from_numpy(item_ids, binary_data=True)
    result = http.infer("recommend", [user, items])
    ids, scores = reference_top(repo, 9, item_ids)
    np.testing.assert_array_equal(result.as_numpy("top_ids"), ids)
    np.testing.assert_allclose(result.as_numpy("top_scores"), scores, rtol=1e-5, atol=1e-6)


def test_nothing_is_served_past_its_ttl(client, store):
    _, port = store
    ids = np.array([4321], dtype=np.int64)
    before = client.infer("fresh_items", [tensor("ids", ids)], client_timeout=RPC_TIMEOUT).as_numpy("features")[0]
    psql(port, "UPDATE item_features SET features = array_fill(7::real, ARRAY[64]) WHERE item_id = 4321")
    try:
        cached = client.infer("fresh_items", [tensor("ids", ids)], client_timeout=RPC_TIMEOUT).as_numpy("features")[0]
        np.testing.assert_array_equal(cached, before)  # within the 4 s TTL: the cached vector
        time.sleep(4.5)
        fresh = client.infer("fresh_items", [tensor("ids", ids)], client_timeout=RPC_TIMEOUT).as_numpy("features")[0]
        np.testing.assert_array_equal(fresh, np.full(64, 7, np.float32))
    finally:
        _, items = SEED.vectors()
        psql(port, f"UPDATE item_features SET features = ARRAY[{','.join(repr(float(v)) for v in items[4320])}]::real[] WHERE item_id = 4321")


def test_the_store_going_down_and_coming_back(client, store, repo):
    folder, port = store
    item_ids = np.array([101, 202, 303], dtype=np.int64)

    def ask(user_id: int):
        return client.infer("recommend", [tensor("user_id", np.array([user_id], dtype=np.int64)), tensor("item_ids", item_ids)],
                            client_timeout=RPC_TIMEOUT)

    subprocess.run([str(STORE), "stop", str(folder)], check=True, timeout=60)
    try:
        # Users never asked for before, so nothing comes from the cache.
        started = time.monotonic()
        expect_error(lambda: ask(501), "UNAVAILABLE", "feature store")
        assert time.monotonic() - started < 10
        expect_error(lambda: ask(502), "UNAVAILABLE", "feature store")
    finally:
        restarted = subprocess.run([str(STORE), "start", str(folder), str(port)], capture_output=True, text=True, timeout=120)
        assert restarted.returncode == 0, restarted.stderr

    def recovered():
        try:
            ask(503)
            return True
        except Exception:
            return False

    assert wait_until(recovered, timeout=30, interval=0.5), "requests still fail after the store came back"
    ids, _ = reference_top(repo, 504, item_ids)
    np.testing.assert_array_equal(ask(504).as_numpy("top_ids"), ids)
