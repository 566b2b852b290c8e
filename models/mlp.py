"""A plain multilayer perceptron: Gemm (``transB=1``, like ``torch.nn.Linear``) + Relu, then a Gemm head.

Full: [B, 784] -> 512 -> 256 -> 10 (MNIST-shaped, 535,818 parameters).
Small: [B, 64] -> 32 -> 10 (2,410 parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from models.builder import GraphBuilder, with_overrides
from models.layers import linear, relu


@dataclass(frozen=True, slots=True)
class MlpConfig:
    in_features: int
    hidden: tuple[int, ...]
    num_classes: int

    def __post_init__(self) -> None:
        if min((self.in_features, *self.hidden, self.num_classes)) <= 0:
            raise ValueError(f"all widths must be positive: {self}")


FULL = MlpConfig(in_features=784, hidden=(512, 256), num_classes=10)
SMALL = MlpConfig(in_features=64, hidden=(32,), num_classes=10)


def mlp(
    *,
    batch: int = 1,
    small: bool = False,
    in_features: int | None = None,
    hidden: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> onnx.ModelProto:
    """Build the MLP; input ``input`` [B, in_features], output ``logits`` [B, num_classes].

    >>> [n.op_type for n in mlp(small=True).graph.node]
    ['Gemm', 'Relu', 'Gemm']
    """
    config = with_overrides(SMALL if small else FULL, in_features=in_features, hidden=hidden, num_classes=num_classes)
    b = GraphBuilder("mlp", seed=seed)
    b.set_metadata("config", repr(config))
    x = b.input("input", (batch, config.in_features))
    width = config.in_features
    for index, out_features in enumerate(config.hidden):
        x = linear(b, x, f"fc{index + 1}", in_features=width, out_features=out_features)
        x = relu(b, x, f"relu{index + 1}")
        width = out_features
    logits = linear(b, x, "logits", in_features=width, out_features=config.num_classes)
    b.output(logits, (batch, config.num_classes))
    return b.build(doc=f"MLP {config}")
