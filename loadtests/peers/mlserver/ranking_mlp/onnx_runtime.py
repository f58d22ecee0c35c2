"""An MLServer custom runtime that runs one ONNX model with onnxruntime.

MLServer (1.7) has no maintained ONNX runtime package on PyPI, so this is its documented
extension point: an `MLModel` whose `load` opens an onnxruntime session on `parameters.uri`
(and, where model-settings.json declares no inputs/outputs, fills that metadata from the ONNX
graph, a symbolic leading dimension becoming -1), and whose `predict` decodes each input tensor with `NumpyCodec`, runs the session
and encodes each output with `NumpyCodec`. `parameters.extra.intra_op_threads` (default 1) sets
onnxruntime's intra-op threads.
"""

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse, MetadataTensor
from mlserver.utils import get_model_uri

DATATYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(int16)": "INT16",
    "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8",
    "tensor(bool)": "BOOL",
}


def _describe(values):
    return [
        MetadataTensor(
            name=v.name,
            datatype=DATATYPES[v.type],
            shape=[d if isinstance(d, int) else -1 for d in v.shape],
        )
        for v in values
    ]


class OnnxRuntimeModel(MLModel):
    async def load(self) -> bool:
        path = await get_model_uri(self.settings)
        extra = (self.settings.parameters.extra or {}) if self.settings.parameters else {}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(extra.get("intra_op_threads", 1))
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._output_names = [o.name for o in self._session.get_outputs()]
        # With parallel_workers > 0, load runs in the worker process and ModelMetadata is
        # answered by the main process from model-settings.json: declare them there.
        if not self.inputs:
            self.inputs = _describe(self._session.get_inputs())
        if not self.outputs:
            self.outputs = _describe(self._session.get_outputs())
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {tensor.name: NumpyCodec.decode_input(tensor) for tensor in payload.inputs}
        results = self._session.run(self._output_names, feeds)
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[
                NumpyCodec.encode_output(name, np.ascontiguousarray(value))
                for name, value in zip(self._output_names, results)
            ],
        )
