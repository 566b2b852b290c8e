"""Run one ONNX node on known values, at the model's own opset, quietly.

Folding evaluates each constant node with `onnx.reference`, which implements every op once per version that
changed it. It lacks some older versions (it has DequantizeLinear only from opset 19, so a quantized opset-17 model
would fail) and fails on some inputs (GatherElements over BERT's token-type buffer, when the buffer is over twice as
long as the indices); then the node runs in onnxruntime, which implements every version from opset 7. Neither may print:
numpy warns on values exporters compute on purpose (T5's relative-position buckets take log(0) = -inf and then
discard it with Where), and a library's warning on stderr would break the one-line rule for bad input.

    >>> import numpy as np, onnx
    >>> dq = onnx.helper.make_node("DequantizeLinear", ["q", "s", "z"], ["x"], name="dq")
    >>> run_node(dq, 17, {"q": np.array([4, -2], np.int8), "s": np.float32(0.5), "z": np.int8(0)})[0]
    array([ 2., -1.], dtype=float32)
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator


def run_node(node: onnx.NodeProto, opset: int, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The values of the node's (present) outputs; the reference evaluator's error if neither library can run it."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return _reference(node, opset, feeds)
        except Exception as reference_error:  # it raises whatever its op raises
            try:
                return _onnxruntime(node, opset, feeds)
            except Exception:  # onnxruntime's errors are less clear: report the reference's
                raise reference_error from None


def _reference(node: onnx.NodeProto, opset: int, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    # A node alone runs at the evaluator's newest opset (Unsqueeze-13 for an opset-11 model): wrap it in a function
    # that imports the model's opset.
    outputs = [name for name in node.output if name]
    function = onnx.helper.make_function("planner.fold", "fold", list(feeds), outputs, [node],
                                         [onnx.helper.make_opsetid("", opset)])
    return [np.asarray(result) for result in ReferenceEvaluator(function).run(None, feeds, attributes={})]


def _onnxruntime(node: onnx.NodeProto, opset: int, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort  # here, not at the top: most models never need it, and it takes a while to import

    inputs = [onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(value.dtype),
                                                 value.shape) for name, value in feeds.items()]
    outputs = [onnx.ValueInfoProto(name=name) for name in node.output if name]
    opsets = [onnx.helper.make_opsetid("", opset)]
    graph = onnx.helper.make_graph([node], "fold", inputs, outputs)
    model = onnx.helper.make_model(graph, opset_imports=opsets, ir_version=onnx.helper.find_min_ir_version_for(opsets))
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only, and those come back as exceptions
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    contiguous = {name: np.ascontiguousarray(value) for name, value in feeds.items()}
    return [np.asarray(value) for value in session.run(None, contiguous)]
