"""Parameter counting that matches the figures torchvision and HuggingFace publish.

Why a rule rather than "sum every initializer": the graphs also carry BN
running statistics (buffers, not parameters, in PyTorch), int64 reshape/axes
constants, and rank-0 float constants (Clip bounds, the attention scale,
GELU's 0.5/1/sqrt(2), Dropout's ratio) that are hyper-parameters, not weights.
"""

from __future__ import annotations

import math

import onnx
from onnx import TensorProto

_FLOAT_TYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE})
_BN_RUNNING_STAT_INPUTS = (3, 4)  # BatchNormalization inputs: X, scale, B, input_mean, input_var


def count_parameters(model: onnx.ModelProto) -> int:
    """Count learned parameters: floating-point initializers of rank >= 1, minus BN running mean/var.

    >>> from models.resnet import resnet50
    >>> count_parameters(resnet50())
    25557032
    """
    running_stats = {
        node.input[index]
        for node in model.graph.node
        if node.op_type == "BatchNormalization"
        for index in _BN_RUNNING_STAT_INPUTS
    }
    return sum(
        math.prod(tensor.dims)
        for tensor in model.graph.initializer
        if tensor.data_type in _FLOAT_TYPES and len(tensor.dims) >= 1 and tensor.name not in running_stats
    )
