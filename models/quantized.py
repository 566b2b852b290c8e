"""Quantized models as users make them: onnxruntime's own quantizer applied to an fp32 ONNX model.

`quantize(model, "qdq")` runs `onnxruntime.quantization.quantize_static` in QDQ format, calibrated on a few seeded
random inputs; `quantize(model, "dynamic")` runs `quantize_dynamic` (DynamicQuantizeLinear + ConvInteger /
MatMulInteger). Nothing here is hand-built: the files are what the tool writes.

>>> from models import build
>>> ops = {node.op_type for node in quantize(build("mlp", small=True), "qdq").graph.node}
>>> sorted(ops & {"QuantizeLinear", "DequantizeLinear"})
['DequantizeLinear', 'QuantizeLinear']
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_dynamic, quantize_static

MODES = ("qdq", "qdq-per-channel", "dynamic")
CALIBRATION_BATCHES = 4


class _RandomReader(CalibrationDataReader):
    """Seeded standard-normal batches for every model input: calibration ranges, not accuracy, are what matter."""

    def __init__(self, model: onnx.ModelProto, seed: int) -> None:
        rng = np.random.default_rng(seed)
        inputs = []
        for value in model.graph.input:
            tensor = value.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else 1 for d in tensor.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
            inputs.append((value.name, shape, dtype))
        self._batches = iter([{name: rng.standard_normal(shape).astype(dtype) for name, shape, dtype in inputs}
                              for _ in range(CALIBRATION_BATCHES)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize(model: onnx.ModelProto, mode: str, *, seed: int = 0) -> onnx.ModelProto:
    """The model as onnxruntime's quantizer writes it in `mode` (one of MODES)."""
    if mode not in MODES:
        raise ValueError(f"quantization mode {mode!r}: choose one of {', '.join(MODES)}")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs a pre-processing hint on every call
    try:
        with tempfile.TemporaryDirectory() as folder:
            source, target = Path(folder) / "fp32.onnx", Path(folder) / "quantized.onnx"
            onnx.save(model, source)
            if mode == "dynamic":
                quantize_dynamic(source, target)
            else:
                quantize_static(source, target, _RandomReader(model, seed), quant_format=QuantFormat.QDQ,
                                per_channel=mode == "qdq-per-channel")
            return onnx.load(target)
    finally:
        root.setLevel(level)
