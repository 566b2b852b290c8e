"""A small CIFAR-style CNN: (Conv 3x3 + Relu + MaxPool 2x2) per stage, Flatten, Gemm + Relu, Gemm head.

Full: [B, 3, 32, 32], stages 32/64/128 channels, fc 2048 -> 256 -> 10 (620,362 parameters).
Small: [B, 3, 16, 16], stages 8/16, fc 256 -> 32 -> 10 (9,946 parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from models.builder import GraphBuilder, with_overrides
from models.layers import conv, linear, max_pool, relu


@dataclass(frozen=True, slots=True)
class CnnConfig:
    image_size: int
    channels: tuple[int, ...]
    hidden: int
    num_classes: int

    def __post_init__(self) -> None:
        if self.image_size % (2 ** len(self.channels)):
            raise ValueError(
                f"image_size {self.image_size} must be divisible by 2**{len(self.channels)} (one pool per stage)"
            )


FULL = CnnConfig(image_size=32, channels=(32, 64, 128), hidden=256, num_classes=10)
SMALL = CnnConfig(image_size=16, channels=(8, 16), hidden=32, num_classes=10)


def cnn(
    *,
    batch: int = 1,
    small: bool = False,
    image_size: int | None = None,
    channels: tuple[int, ...] | None = None,
    hidden: int | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> onnx.ModelProto:
    """Build the CNN; input ``input`` [B, 3, S, S], output ``logits`` [B, num_classes].

    >>> [n.op_type for n in cnn(small=True).graph.node][:3]
    ['Conv', 'Relu', 'MaxPool']
    """
    config = with_overrides(
        SMALL if small else FULL, image_size=image_size, channels=channels, hidden=hidden, num_classes=num_classes
    )
    b = GraphBuilder("cnn", seed=seed)
    b.set_metadata("config", repr(config))
    x = b.input("input", (batch, 3, config.image_size, config.image_size))
    in_channels = 3
    for index, out_channels in enumerate(config.channels):
        stage = f"stage{index + 1}"
        x = conv(
            b, x, f"{stage}.conv", in_channels=in_channels, out_channels=out_channels, kernel=3, padding=1, bias=True
        )
        x = relu(b, x, f"{stage}.relu")
        x = max_pool(b, x, f"{stage}.pool", kernel=2, stride=2)
        in_channels = out_channels
    side = config.image_size // 2 ** len(config.channels)
    x = b.node("Flatten", [x], name="flatten", axis=1)
    x = linear(b, x, "fc1", in_features=in_channels * side * side, out_features=config.hidden)
    x = relu(b, x, "fc1.relu")
    logits = linear(b, x, "logits", in_features=config.hidden, out_features=config.num_classes)
    b.output(logits, (batch, config.num_classes))
    return b.build(doc=f"CNN {config}")
