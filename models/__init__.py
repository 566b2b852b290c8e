"""A model zoo written with ``onnx.helper`` only: seeded weights, static shapes, opset 17.

Every builder is keyword-only, takes ``batch`` and ``small`` (a fast variant
with the same op types and structure), optional architecture overrides and a
``seed``; the same arguments always give a byte-identical model. All graphs use
only ``PLANNER_OPS``.

>>> model = build("mlp", small=True)
>>> count_parameters(model)
2410
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import onnx

from models.bert import bert_base
from models.cnn import cnn
from models.counting import count_parameters
from models.mlp import mlp
from models.mobilenet import mobilenet_v2
from models.resnet import resnet18, resnet50
from models.vgg import vgg16
from models.vit import vit

__all__ = ["PLANNER_OPS", "ZOO", "build", "count_parameters"]

ZOO: dict[str, Callable[..., onnx.ModelProto]] = {
    "mlp": mlp,
    "cnn": cnn,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "vgg16": vgg16,
    "bert_base": bert_base,
    "vit": vit,
}

# The op types the planner supports; every zoo graph stays inside this set.
# fmt: off
PLANNER_OPS: frozenset[str] = frozenset({
    "Conv", "ConvTranspose", "Gemm", "MatMul",
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Neg", "Min", "Max", "Sum", "Mean",
    "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Erf", "Gelu", "HardSigmoid", "HardSwish",
    "BatchNormalization", "LayerNormalization", "LRN", "Softmax",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceSum",
    "Concat", "Split", "Slice", "Pad", "Resize", "Upsample", "Transpose", "Cast", "Reshape", "Flatten",
    "Squeeze", "Unsqueeze", "Identity", "Dropout",
})
# fmt: on


def build(name: str, *, small: bool = False, batch: int = 1, **kwargs: Any) -> onnx.ModelProto:
    """Build zoo model ``name``; ``kwargs`` go to its builder (e.g. ``seed=1``, ``num_layers=4``).

    >>> build("resnet18", small=True, batch=2).graph.input[0].type.tensor_type.shape.dim[0].dim_value
    2
    """
    try:
        builder = ZOO[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(ZOO)}") from None
    return builder(small=small, batch=batch, **kwargs)
