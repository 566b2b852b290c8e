"""Run one ONNX op on real numbers: onnxruntime on a one-node model, so op semantics are never written twice.

The session is cached per (op, opset, attributes, input shapes and dtypes, by-value params, output), not per node:
every tile of a node feeds whole tensors, so one node needs one session, and equal nodes share it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import onnx
import onnxruntime as ort
from onnx import defs, helper, numpy_helper

from simulator.isa import Param
from simulator.scratchpad import FunctionalError

Slot = np.ndarray | Param | None
_A = onnx.AttributeProto
_SCALARS: dict[int, type] = {_A.FLOAT: float, _A.INT: int, _A.STRING: str}
_LISTS: dict[int, type] = {_A.FLOATS: float, _A.INTS: int, _A.STRINGS: str}
_REQUIRED_OUTPUTS = {"DynamicQuantizeLinear": 3}  # outputs a node must name even when one is wanted


@dataclass(frozen=True, slots=True)
class _Feed:
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True, slots=True)
class _OpSpec:
    op_type: str
    opset: int
    attrs: tuple[tuple[str, Any], ...]  # lists frozen to tuples, so the spec hashes
    inputs: tuple[_Feed | Param | None, ...]
    output_index: int
    output_count: int
    output_dtype: str


def run_op(op_type: str, attrs: Sequence[tuple[str, Any]], opset: int, slots: Sequence[Slot], output_index: int,
           output_shape: Sequence[int], output_dtype: np.dtype | str) -> np.ndarray:
    """Output number `output_index` of the op applied to `slots` (arrays are fed, Params are constants, None is an
    omitted input). `output_shape` is only used to count a Split's outputs when nothing else says how many.

    >>> run_op("Relu", (), 17, [np.array([-1.0, 2.0], np.float32)], 0, (2,), "float32").tolist()
    [0.0, 2.0]
    """
    inputs = tuple(_Feed(s.shape, s.dtype.str) if isinstance(s, np.ndarray) else s for s in slots)
    if op_type == "Gemm" and opset < 11 and (len(inputs) < 3 or inputs[2] is None):
        # A split reduction's partial Gemm has no bias, which Gemm made optional only at opset 11; Gemm-9 and
        # Gemm-11 compute alike (the zoo's AlexNet, opset 9, split its fully connected layers at 64 KiB)
        opset = 11
    spec = _OpSpec(op_type, opset, _freeze(attrs), inputs, output_index,
                   _output_count(op_type, dict(attrs), slots, output_index, tuple(output_shape)),
                   np.dtype(output_dtype).str)
    session = _session(spec)
    feeds = {f"x{i}": s for i, s in enumerate(slots) if isinstance(s, np.ndarray)}
    try:
        (result,) = session.run([f"y{output_index}"], feeds)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise FunctionalError(f"onnxruntime failed to run {op_type}: {_first_line(exc)}") from None
    return np.asarray(result)


@functools.lru_cache(maxsize=1024)
def _session(spec: _OpSpec) -> ort.InferenceSession:
    schema = _schema(spec.op_type, spec.opset)
    names, feeds, constants = [], [], []
    for i, slot in enumerate(spec.inputs):
        if slot is None:
            names.append("")
        elif isinstance(slot, Param):
            names.append(f"p{i}")
            constants.append(numpy_helper.from_array(np.array(slot.values, dtype=slot.dtype).reshape(slot.shape),
                                                     f"p{i}"))
        else:
            names.append(f"x{i}")
            feeds.append(helper.make_tensor_value_info(f"x{i}", _elem_type(slot.dtype), slot.shape))
    outputs = [f"y{i}" for i in range(spec.output_count)]
    node = helper.make_node(spec.op_type, names, outputs, name=spec.op_type)
    node.attribute.extend(_attribute(schema, name, value, spec.output_dtype) for name, value in spec.attrs)
    wanted = helper.make_tensor_value_info(f"y{spec.output_index}", _elem_type(spec.output_dtype), None)
    graph = helper.make_graph([node], "tile", feeds, [wanted], initializer=constants)
    opsets = [helper.make_opsetid("", spec.opset)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the op's own kernel, unfused
    options.log_severity_level = 3
    options.intra_op_num_threads = 1  # tiles are small; a thread pool per cached session costs far more than it saves
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise FunctionalError(f"onnxruntime cannot run {spec.op_type} at opset {spec.opset}: "
                              f"{_first_line(exc)}") from None


def _schema(op_type: str, opset: int) -> defs.OpSchema:
    try:
        return defs.get_schema(op_type, opset)
    except defs.SchemaError:
        raise FunctionalError(f"onnx has no op {op_type!r} at opset {opset}") from None


def _attribute(schema: defs.OpSchema, name: str, value: Any, output_dtype: str) -> onnx.AttributeProto:
    """Attributes arrive JSON-style (1 for 1.0, lists for tuples); the schema says what each one really is."""
    if name not in schema.attributes:
        raise FunctionalError(f"{schema.name} has no attribute {name!r}; it has {sorted(schema.attributes)}")
    kind = int(cast(int, schema.attributes[name].type))  # an int-valued enum that onnx's stubs leave untyped
    if kind in _LISTS:
        return helper.make_attribute(name, [_LISTS[kind](item) for item in value], attr_type=kind)
    if kind in _SCALARS:
        return helper.make_attribute(name, _SCALARS[kind](value), attr_type=kind)
    if kind == _A.TENSOR:
        # A plan file keeps a tensor attribute's values only (ConstantOfShape's `value`): 1-D, in the output's dtype.
        values = np.array(value if isinstance(value, tuple) else (value,), dtype=output_dtype)
        return helper.make_attribute(name, numpy_helper.from_array(values), attr_type=kind)
    raise FunctionalError(f"{schema.name} attribute {name!r} of type {_A.AttributeType.Name(kind)} cannot come "
                          "from a plan file")


def _output_count(op_type: str, attrs: dict[str, Any], slots: Sequence[Slot], output_index: int,
                  output_shape: tuple[int, ...]) -> int:
    """How many outputs the node has. Trailing outputs are optional for every op but Split, whose count is its
    semantics, and those in _REQUIRED_OUTPUTS. The program does not carry a Split's count, so read it from wherever
    the node says it."""
    if op_type != "Split":
        return max(output_index + 1, _REQUIRED_OUTPUTS.get(op_type, 0))
    split = slots[1] if len(slots) > 1 else None
    if "num_outputs" in attrs:
        return int(attrs["num_outputs"])
    if isinstance(split, Param):
        return len(split.values)
    if isinstance(split, np.ndarray):
        return int(split.size)
    if "split" in attrs:
        return len(attrs["split"])
    data = slots[0]
    if not isinstance(data, np.ndarray):
        raise FunctionalError("Split without its data input")
    axis = int(attrs.get("axis", 0)) % data.ndim
    return data.shape[axis] // output_shape[axis]  # an equal split


def _freeze(value: Any) -> Any:
    return tuple(_freeze(item) for item in value) if isinstance(value, (list, tuple)) else value


def _elem_type(dtype: str) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
