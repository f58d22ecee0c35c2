#!/usr/bin/env python3
"""A model repository for the rollout walkthrough (docs/rollouts.md): ranking_mlp at version 1
(examples/models' file, unchanged) and version 2, "retrained": the same network with its last
layer's bias raised by 0.1, so version 2 scores every request a little higher, by a known
amount. Both versions are served (version_policy all).

    .venv/bin/python examples/rollouts/make-repository.py /tmp/rollout-repo
"""

import shutil
import sys
from pathlib import Path

import onnx
from onnx import numpy_helper

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "models" / "ranking_mlp"
BIAS_SHIFT = 0.1


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1]) / "ranking_mlp"
    if not (SOURCE / "1" / "model.onnx").is_file():
        sys.exit(f"{SOURCE}/1/model.onnx is missing: run .venv/bin/python examples/models/generate.py first")
    if out.exists():
        shutil.rmtree(out)
    (out / "1").mkdir(parents=True)
    shutil.copy(SOURCE / "1" / "model.onnx", out / "1" / "model.onnx")
    model = onnx.load(str(SOURCE / "1" / "model.onnx"))
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.name == "fc3.bias":
            shifted = numpy_helper.to_array(tensor) + BIAS_SHIFT
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(shifted.astype(tensor_dtype(tensor)), name=tensor.name))
    model.model_version = 2
    (out / "2").mkdir()
    onnx.save(model, str(out / "2" / "model.onnx"))
    config = (SOURCE / "config.pbtxt").read_text()
    (out / "config.pbtxt").write_text(config.replace('platform: "onnxruntime_onnx"\n', 'platform: "onnxruntime_onnx"\nversion_policy: { all {} }\n', 1))
    print(f"{out}: versions 1 and 2 (version 2's logit +{BIAS_SHIFT})")


def tensor_dtype(tensor):
    return onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)


if __name__ == "__main__":
    main()
