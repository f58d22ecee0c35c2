"""Classic ML models as users bring them: scikit-learn (trees, logistic and linear regression,
scaler/normalizer pipelines), XGBoost and LightGBM models trained and exported by the real
converters at test time (scripts/make-ml-models.py), served through the
whole cluster and checked against onnxruntime on the same inputs, NaN (missing values) included:
identical labels, probabilities within 1e-6, regressions within 1e-5 relative."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient

from conftest import RPC_TIMEOUT, running_cluster, tensor

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("make_ml_models", ROOT / "scripts" / "make-ml-models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ml-models")
    _generator().make(str(folder))
    return folder


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, repo):
    with running_cluster(tmp_path_factory, "classic-ml", model_repository=repo, workers=1) as c:
        yield c


MODELS = [
    "sklearn_random_forest_multiclass", "sklearn_random_forest_binary", "sklearn_gradient_boosting_binary",
    "sklearn_gradient_boosting_multiclass", "sklearn_random_forest_regressor", "sklearn_gradient_boosting_regressor",
    "sklearn_logistic_binary", "sklearn_logistic_multiclass", "sklearn_scaled_logistic_pipeline",
    "sklearn_linear_regression", "sklearn_minmax_ridge_pipeline",
    "xgboost_binary", "xgboost_multiclass", "xgboost_regressor",
    "lightgbm_binary", "lightgbm_multiclass", "lightgbm_regressor",
]


def reference(repo: Path, name: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(repo / name / "1" / "model.onnx"), options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("batch", [1, 97])
def test_exported_model_matches_onnxruntime_through_the_cluster(cluster, repo, name, batch):
    meta = json.loads((repo / name / "meta.json").read_text())
    rng = np.random.default_rng(batch * 31 + len(name))
    x = rng.standard_normal((batch, meta["features"])).astype(np.float32)
    if meta["nan"]:
        x[rng.random(x.shape) < 0.15] = np.nan
    session = reference(repo, name)
    expected = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"X": x})))
    result = cluster.client().infer(name, [tensor("X", x)], client_timeout=RPC_TIMEOUT)
    if meta["kind"] == "regression":
        (output,) = expected
        actual, want = result.as_numpy(output).astype(np.float64), expected[output].astype(np.float64)
        assert actual.shape == want.shape, (actual.shape, want.shape)
        assert np.max(np.abs(actual - want) / np.maximum(np.abs(want), 1)) <= 1e-5
        return
    labels, probabilities = result.as_numpy("label"), result.as_numpy("probabilities")
    np.testing.assert_array_equal(labels.reshape(-1), expected["label"].reshape(-1))
    assert probabilities.shape == expected["probabilities"].shape
    assert np.max(np.abs(probabilities - expected["probabilities"])) <= 1e-6


def test_a_zipmap_export_is_refused_with_the_option_that_avoids_it(tmp_path):
    """The converters' default output (a list of {label: probability} maps) cannot travel in
    the inference protocol: loading says so and names the export option."""
    import warnings
    warnings.filterwarnings("ignore")
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    import onnx
    import subprocess

    from conftest import binary, cli_env
    rng = np.random.default_rng(5)
    x = rng.standard_normal((100, 4)).astype(np.float32)
    model = to_onnx(RandomForestClassifier(n_estimators=3).fit(x, (x[:, 0] > 0).astype(int)), x[:1])
    folder = tmp_path / "repo" / "with_zipmap" / "1"
    folder.mkdir(parents=True)
    onnx.save(model, str(folder / "model.onnx"))
    proc = subprocess.Popen([binary("fulcrum-worker"), "--model-repository", str(tmp_path / "repo"), "--port", "0",
                             "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=cli_env(), stdin=subprocess.DEVNULL)
    try:
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "serving the inference protocol" in line:
                break
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    log = "".join(lines)
    assert "ZipMap" in log and "'zipmap': False" in log and "unavailable" in log, log
