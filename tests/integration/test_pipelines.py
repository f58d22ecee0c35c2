"""Pipelines (Triton's ensemble format) and processors, run by the frontend: one 2-worker cluster
serving the example pipelines of examples/models (simple_chain, rank_candidates, iris_labels and
their processors) plus pipelines that cannot run, driven by unmodified tritonclient over gRPC and
HTTP and checked against onnxruntime on the same model files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from conftest import (EXAMPLES, RPC_TIMEOUT, expect_error, make_repository, response_parameters,
                      running_cluster, tensor)

EXAMPLE_PIPELINES = ("simple_chain", "rank_candidates", "rank_top", "iris_labels", "top_labels")

# A step that names a model the repository does not have, two pipelines that call each other,
# a processor with a bad parameter, a pipeline calling a model that fails to load, and a pipeline
# that calls another pipeline.
EXTRA = {
    "names_missing": """
platform: "ensemble"
max_batch_size: 8
input [ { name: "A" data_type: TYPE_INT32 dims: [ 16 ] } ]
output [ { name: "Y" data_type: TYPE_INT32 dims: [ 16 ] } ]
ensemble_scheduling { step [
  { model_name: "simple" input_map { key: "INPUT0" value: "A" } input_map { key: "INPUT1" value: "A" } output_map { key: "OUTPUT0" value: "S" } },
  { model_name: "no_such_model" input_map { key: "x" value: "S" } output_map { key: "y" value: "Y" } }
] }
""",
    "loop_a": """
platform: "ensemble"
max_batch_size: 8
input [ { name: "A" data_type: TYPE_INT32 dims: [ 16 ] } ]
output [ { name: "Y" data_type: TYPE_INT32 dims: [ 16 ] } ]
ensemble_scheduling { step [ { model_name: "loop_b" input_map { key: "A" value: "A" } output_map { key: "Y" value: "Y" } } ] }
""",
    "loop_b": """
platform: "ensemble"
max_batch_size: 8
input [ { name: "A" data_type: TYPE_INT32 dims: [ 16 ] } ]
output [ { name: "Y" data_type: TYPE_INT32 dims: [ 16 ] } ]
ensemble_scheduling { step [ { model_name: "loop_a" input_map { key: "A" value: "A" } output_map { key: "Y" value: "Y" } } ] }
""",
    "bad_pooling": """
platform: "fulcrum_pooling"
max_batch_size: 8
input [ { name: "t" data_type: TYPE_FP32 dims: [ -1, 4 ] }, { name: "m" data_type: TYPE_INT64 dims: [ -1 ] } ]
output [ { name: "v" data_type: TYPE_FP32 dims: [ 4 ] } ]
parameters { key: "mode" value: { string_value: "max" } }
""",
    "through_broken": """
platform: "ensemble"
max_batch_size: 4
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] } ]
ensemble_scheduling { step [ { model_name: "broken" input_map { key: "x" value: "x" } output_map { key: "y" value: "y" } } ] }
""",
    "nested": """
platform: "ensemble"
max_batch_size: 8
input [ { name: "A" data_type: TYPE_INT32 dims: [ 16 ] }, { name: "B" data_type: TYPE_INT32 dims: [ 16 ] } ]
output [ { name: "QUAD_A" data_type: TYPE_INT32 dims: [ 16 ] } ]
ensemble_scheduling { step [
  { model_name: "simple_chain" input_map { key: "A" value: "A" } input_map { key: "B" value: "B" } output_map { key: "TWICE_A" value: "T" } },
  { model_name: "simple" input_map { key: "INPUT0" value: "T" } input_map { key: "INPUT1" value: "T" } output_map { key: "OUTPUT0" value: "QUAD_A" } }
] }
""",
    "mean_pool": """
platform: "fulcrum_pooling"
max_batch_size: 16
input [ { name: "token_embeddings" data_type: TYPE_FP32 dims: [ -1, 8 ] }, { name: "attention_mask" data_type: TYPE_INT64 dims: [ -1 ] } ]
output [ { name: "embedding" data_type: TYPE_FP32 dims: [ 8 ] } ]
parameters { key: "normalize" value: { string_value: "true" } }
""",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    folder = make_repository(tmp_path_factory.mktemp("pipelines"), broken=True)
    for name in ("sklearn_classifier",) + EXAMPLE_PIPELINES:
        shutil.copytree(EXAMPLES / name, folder / name)
    for name, text in EXTRA.items():
        (folder / name / "1").mkdir(parents=True)
        (folder / name / "config.pbtxt").write_text(text)
    return folder


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, repo):
    with running_cluster(tmp_path_factory, "pipelines", model_repository=repo, workers=2, extra_args=("--metrics",)) as c:
        yield c


@pytest.fixture
def rng(request):
    return np.random.default_rng(abs(hash(request.node.name)) % (2**32))


@pytest.fixture(scope="module")
def client(cluster):
    return cluster.client()


@pytest.fixture(scope="module")
def http(cluster):
    return httpclient.InferenceServerClient(cluster.endpoints["http"], network_timeout=RPC_TIMEOUT)


def session(repo: Path, model: str) -> ort.InferenceSession:
    return ort.InferenceSession(str(repo / model / "1" / "model.onnx"), providers=["CPUExecutionProvider"])


def ints(rng, batch):
    return (rng.integers(-1000, 1000, size=(batch, 16), dtype=np.int32),
            rng.integers(-1000, 1000, size=(batch, 16), dtype=np.int32))


def test_a_chain_of_pool_models_over_grpc(client, rng):
    a, b = ints(rng, 3)
    result = client.infer("simple_chain", [tensor("A", a), tensor("B", b)], request_id="chain-1",
                          client_timeout=RPC_TIMEOUT)
    np.testing.assert_array_equal(result.as_numpy("TWICE_A"), 2 * a)
    np.testing.assert_array_equal(result.as_numpy("TWICE_B"), 2 * b)
    np.testing.assert_array_equal(result.as_numpy("DOUBLE_A"), 2 * a)
    response = result.get_response()
    assert (response.model_name, response.model_version, response.id) == ("simple_chain", "1", "chain-1")
    params = response_parameters(result)
    for key in ("fulcrum.frontend_us", "fulcrum.network_us", "fulcrum.queue_us", "fulcrum.compute_us",
                "fulcrum.step.1.simple_us", "fulcrum.step.2.simple_us", "fulcrum.step.3.simple_us"):
        assert params[key][0] == "int64_param" and params[key][1] >= 0, (key, params)


def test_requested_outputs_only(client, rng):
    a, b = ints(rng, 1)
    result = client.infer("simple_chain", [tensor("A", a), tensor("B", b)],
                          outputs=[grpcclient.InferRequestedOutput("TWICE_B")], client_timeout=RPC_TIMEOUT)
    assert [o.name for o in result.get_response().outputs] == ["TWICE_B"]
    np.testing.assert_array_equal(result.as_numpy("TWICE_B"), 2 * b)


def test_over_http_json_and_binary(http, rng):
    a, b = ints(rng, 2)
    inputs = [httpclient.InferInput("A", list(a.shape), "INT32"), httpclient.InferInput("B", list(b.shape), "INT32")]
    inputs[0].set_data_from_numpy(a, binary_data=False)
    inputs[1].set_data_from_numpy(b, binary_data=True)
    outputs = [httpclient.InferRequestedOutput("TWICE_A", binary_data=False),
               httpclient.InferRequestedOutput("DOUBLE_A", binary_data=True)]
    result = http.infer("simple_chain", inputs, outputs=outputs)
    np.testing.assert_array_equal(result.as_numpy("TWICE_A"), 2 * a)
    np.testing.assert_array_equal(result.as_numpy("DOUBLE_A"), 2 * a)
    assert http.is_model_ready("simple_chain")
    metadata = http.get_model_metadata("simple_chain")
    assert metadata["platform"] == "ensemble" and metadata["versions"] == ["1"]
    assert [i["name"] for i in metadata["inputs"]] == ["A", "B"]


def test_a_pipeline_inside_a_pipeline(client, rng):
    a, b = ints(rng, 2)
    result = client.infer("nested", [tensor("A", a), tensor("B", b)], client_timeout=RPC_TIMEOUT)
    np.testing.assert_array_equal(result.as_numpy("QUAD_A"), 4 * a)


def test_score_then_rank_in_the_frontend(client, repo, rng):
    features = rng.standard_normal((50, 256)).astype(np.float32)
    ids = np.arange(7000, 7050, dtype=np.int64)
    result = client.infer("rank_candidates", [tensor("features", features), tensor("ids", ids)],
                          client_timeout=RPC_TIMEOUT)
    (scores,) = session(repo, "ranking_mlp").run(["score"], {"features": features})
    order = np.argsort(-scores[:, 0], kind="stable")[:10]
    np.testing.assert_array_equal(result.as_numpy("top_ids"), ids[order])
    np.testing.assert_allclose(result.as_numpy("top_scores"), scores[order, 0], rtol=1e-5, atol=1e-6)
    params = response_parameters(result)
    assert "fulcrum.step.1.ranking_mlp_us" in params and "fulcrum.step.2.rank_top_us" in params


def test_probabilities_labelled_in_the_frontend(client, repo, rng):
    features = rng.standard_normal((5, 4)).astype(np.float32)
    result = client.infer("iris_labels", [tensor("features", features)], client_timeout=RPC_TIMEOUT)
    labels_file = (repo / "top_labels" / "labels.txt").read_text().split()
    (probabilities,) = session(repo, "sklearn_classifier").run(["probabilities"], {"features": features})
    got = result.as_numpy("labels")
    assert got.shape == (5, 2)
    for row, p in zip(got, probabilities):
        best = np.argsort(-p, kind="stable")[:2]
        fields = [entry.decode().split(":") for entry in row]
        assert [int(f[1]) for f in fields] == list(best)
        assert [f[2] for f in fields] == [labels_file[i] for i in best]
        np.testing.assert_allclose([float(f[0]) for f in fields], p[best], atol=1e-5)


def test_a_processor_called_directly(client, rng):
    tokens = rng.standard_normal((3, 5, 8)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=np.int64)
    result = client.infer("mean_pool", [tensor("token_embeddings", tokens), tensor("attention_mask", mask)],
                          client_timeout=RPC_TIMEOUT)
    expected = (tokens * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(result.as_numpy("embedding"), expected, rtol=1e-5, atol=1e-6)


def test_metadata_config_index_and_statistics(client, rng):
    config = client.get_model_config("simple_chain", client_timeout=RPC_TIMEOUT).config
    assert config.platform == "ensemble"
    steps = config.ensemble_scheduling.step
    assert [s.model_name for s in steps] == ["simple", "simple", "simple"]
    assert dict(steps[0].input_map) == {"INPUT0": "A", "INPUT1": "B"}
    assert dict(steps[1].output_map) == {"OUTPUT0": "TWICE_A", "OUTPUT1": "TWICE_B"}
    processor = client.get_model_config("rank_top", client_timeout=RPC_TIMEOUT).config
    assert processor.platform == "fulcrum_rank" and processor.parameters["top_k"].string_value == "10"

    index = {m.name: m for m in client.get_model_repository_index(client_timeout=RPC_TIMEOUT).models}
    for name in ("simple_chain", "rank_candidates", "rank_top", "iris_labels", "top_labels", "nested", "mean_pool"):
        assert index[name].state == "READY", (name, index[name])
    for name, fragment in (("names_missing", "step 2 ('no_such_model') names model 'no_such_model', which is not in the model repository"),
                           ("loop_a", "pipelines call each other in a cycle"),
                           ("loop_b", "pipelines call each other in a cycle"),
                           ("bad_pooling", "parameter 'mode': 'max' is not one of mean, cls")):
        assert index[name].state == "UNAVAILABLE", (name, index[name])
        assert fragment in index[name].reason, (name, index[name].reason)
    # A pipeline whose step model failed to load waits for it, and says so.
    assert index["through_broken"].state == "UNAVAILABLE"
    assert "broken" in index["through_broken"].reason
    assert not client.is_model_ready("through_broken")
    # The workers never loaded the pipelines or processors: they are not pool models.
    assert "simple_chain" not in str(client.get_inference_statistics("simple", client_timeout=RPC_TIMEOUT))

    before = client.get_inference_statistics("simple_chain", client_timeout=RPC_TIMEOUT).model_stats[0]
    a, b = ints(rng, 4)
    for _ in range(3):
        client.infer("simple_chain", [tensor("A", a), tensor("B", b)], client_timeout=RPC_TIMEOUT)
    after = client.get_inference_statistics("simple_chain", client_timeout=RPC_TIMEOUT).model_stats[0]
    assert (after.name, after.version) == ("simple_chain", "1")
    assert after.inference_stats.success.count - before.inference_stats.success.count == 3
    assert after.inference_count - before.inference_count == 12
    everything = client.get_inference_statistics(client_timeout=RPC_TIMEOUT)
    assert {"simple", "simple_chain", "rank_top"} <= {s.name for s in everything.model_stats}


def test_bad_requests_and_pipelines_that_cannot_run(client, rng):
    a, b = ints(rng, 1)
    expect_error(lambda: client.infer("simple_chain", [tensor("A", a.astype(np.int64)), tensor("B", b)],
                                      client_timeout=RPC_TIMEOUT),
                 "INVALID_ARGUMENT", "input 'A'", "INT64")
    expect_error(lambda: client.infer("simple_chain", [tensor("A", a)], client_timeout=RPC_TIMEOUT),
                 "INVALID_ARGUMENT", "'B'")
    expect_error(lambda: client.infer("simple_chain", [tensor("A", a), tensor("B", b)],
                                      outputs=[grpcclient.InferRequestedOutput("SUM")], client_timeout=RPC_TIMEOUT),
                 "INVALID_ARGUMENT", "'SUM'")
    expect_error(lambda: client.infer("simple_chain", [tensor("A", a), tensor("B", b)], model_version="2",
                                      client_timeout=RPC_TIMEOUT),
                 "NOT_FOUND", "version '2'")
    expect_error(lambda: client.infer("names_missing", [tensor("A", a)], client_timeout=RPC_TIMEOUT),
                 "UNAVAILABLE", "no_such_model")
    expect_error(lambda: client.infer("loop_a", [tensor("A", a)], client_timeout=RPC_TIMEOUT),
                 "UNAVAILABLE", "cycle")
    x = rng.standard_normal((1, 4)).astype(np.float32)
    expect_error(lambda: client.infer("through_broken", [tensor("x", x)], client_timeout=RPC_TIMEOUT),
                 "UNAVAILABLE", "pipeline 'through_broken' step 1 ('broken')")
    # Candidates beyond the scoring model's max_batch_size fail in the step, naming it.
    features = rng.standard_normal((65, 256)).astype(np.float32)
    ids = np.arange(65, dtype=np.int64)
    expect_error(lambda: client.infer("rank_candidates", [tensor("features", features), tensor("ids", ids)],
                                      client_timeout=RPC_TIMEOUT),
                 "INVALID_ARGUMENT", "step 1 ('ranking_mlp')", "64")
    # Ids that do not match the scores: the processor refuses them.
    features = rng.standard_normal((3, 256)).astype(np.float32)
    expect_error(lambda: client.infer("rank_candidates", [tensor("features", features),
                                                          tensor("ids", np.arange(4, dtype=np.int64))],
                                      client_timeout=RPC_TIMEOUT),
                 "INVALID_ARGUMENT", "step 2 ('rank_top')")
    # Still serving after all that.
    result = client.infer("simple_chain", [tensor("A", a), tensor("B", b)], client_timeout=RPC_TIMEOUT)
    np.testing.assert_array_equal(result.as_numpy("DOUBLE_A"), 2 * a)


def test_the_workers_skip_pipelines_and_processors(cluster):
    log = cluster.stderr_path.read_text()
    assert "pipeline 'simple_chain' version 1: 3 step(s)" in log
    assert "processor 'rank_top' version 1 (fulcrum_rank)" in log
    # A worker that tried to load one would have logged its refusal.
    assert "the frontends run it" not in log


def test_each_step_is_a_prometheus_histogram(cluster, client, rng):
    import urllib.request
    a, b = ints(rng, 1)
    client.infer("simple_chain", [tensor("A", a), tensor("B", b)], client_timeout=RPC_TIMEOUT)
    address = cluster.endpoints["metrics"]["frontend"]
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=RPC_TIMEOUT) as response:
        text = response.read().decode()
    counts = [l for l in text.splitlines() if l.startswith("fulcrum_pipeline_step_seconds_count")]
    for step in ("1", "2", "3"):
        assert any('pipeline="simple_chain"' in l and f'step="{step}"' in l and 'model="simple"' in l and float(l.split()[-1]) >= 1
                   for l in counts), counts
