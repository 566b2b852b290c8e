"""How far a program's float values may honestly be from onnxruntime's, where it splits a reduction.

A split reduction (a Conv, Gemm or MatMul whose input channels or k are summed in slices, `planner.staging.split`) adds
the same n products in another order than onnxruntime. Two orders differ by rounding errors whose size follows the
magnitude of the *terms*, not of the result: where the products cancel, a result near zero carries the error of
terms of the tensor's scale. The dtype's absolute tolerance (1e-5 for fp32) then fails on values of scale 100:
resnet50-small at 8 KiB differs by 1.8e-5 at an element of layer3.0.conv3 whose tensor reaches 64.

The size of those errors is that of Higham and Mary ("A new approach to probabilistic rounding error analysis", SIAM
J. Sci. Comput. 41(5), 2019): independent rounding errors make a sum of n terms off by about `lambda * sqrt(n) * u`
times the terms' magnitude, u the unit roundoff, with a probability that falls like `exp(-lambda**2 / 2)`. The
functional simulator feeds every later op the program's own values, so the difference travels on to every tensor the
split reaches, and there it is of the same relative size (a BatchNormalization rescales values and errors alike).

So every float tensor a split reduction reaches gets an absolute tolerance of `LAMBDA * sqrt(n) * u * max |value|`,
with n the longest split reduction upstream of it and `max |value|` the tensor's scale in the reference. On
resnet50-small at 8 KiB the largest difference measured is 7e-7 of a tensor's scale; the tolerance there is 6.5e-5
of it (n = 4,608). Data in the wrong place is off by the tensor's scale itself, far outside. A tensor no split reaches
keeps the dtype's tolerance alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from planner.graph import Graph, Node
from simulator.isa import Compute, Program

LINEAR = frozenset({"Conv", "Gemm", "MatMul"})
LAMBDA = 16.0  # Higham and Mary's lambda: errors beyond it have probability below 2 exp(-128)


def split_error_bounds(program: Program, graph: Graph, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per float tensor a split reduction reaches, the absolute error allowed on top of the dtype's tolerance (one
    value for the whole tensor, as a 0-d array); see the module docstring.

    >>> round(LAMBDA * math.sqrt(4608) * float(np.finfo(np.float32).eps) / 2, 7)  # of the tensor's scale
    6.47e-05
    """
    split = {instruction.node for instruction in program.instructions
             if isinstance(instruction, Compute) and instruction.slices}
    if not split:
        return {}
    longest: dict[str, int] = {}  # tensor -> the longest split reduction upstream of it
    for node in graph.nodes:  # in topological order: a node's inputs are settled before it
        reach = max((longest[name] for name in node.inputs if name in longest), default=0)
        if node.name in split and node.op_type in LINEAR:
            reach = max(reach, _reduction_length(node, values))
        if reach:
            for name in node.outputs:
                longest[name] = reach
    found = {}
    for name, n in longest.items():
        value = np.asarray(values[name]) if name in values else None
        if value is None or value.dtype.kind != "f" or value.size == 0:
            continue
        unit = float(np.finfo(value.dtype).eps) / 2
        found[name] = np.asarray(LAMBDA * math.sqrt(n) * unit * float(np.abs(value).max()), dtype=value.dtype)
    return found


def _reduction_length(node: Node, values: Mapping[str, np.ndarray]) -> int:
    first, second = (np.shape(values[name]) for name in node.inputs[:2])
    bias = int(len(node.inputs) > 2 and bool(node.inputs[2]))
    if node.op_type == "Conv":
        return math.prod(second[1:]) + bias
    if node.op_type == "Gemm":
        return first[0 if node.attrs.get("transA", 0) else 1] + bias
    return first[-1]
