"""torchvision MobileNetV2: inverted residuals with depthwise convs, ReLU6 as Clip(0, 6).

Layout and names follow ``torchvision.models.mobilenet_v2`` (``features.3.conv.1.0``
is block 3's depthwise conv). Conv has no bias, each is followed by BN; the
residual Add appears where stride == 1 and in == out channels; the head is
GlobalAveragePool, Flatten, Dropout(0.2), Gemm.

Full: width 1.0, 224x224, 1000 classes -> 3,504,872 parameters, ~300 MMACs.
Small: width 0.35 (a published multiplier; the smallest whose rounding keeps exactly the full
network's residual Adds -- at 0.25 block 1 becomes 8 -> 8 and gains one), 32x32, 10 classes,
last conv keeps torchvision's 1280 channels -> 408,938 parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from models.builder import GraphBuilder, with_overrides
from models.layers import batch_norm, conv, dropout, global_avg_pool_flatten, linear, relu6

# (expand_ratio t, output channels c, repeats n, first stride s), from the paper and torchvision.
INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


@dataclass(frozen=True, slots=True)
class MobileNetV2Config:
    width_mult: float = 1.0
    image_size: int = 224
    num_classes: int = 1000
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if self.image_size % 32:
            raise ValueError(f"image_size {self.image_size} must be divisible by 32 (the network's total stride)")
        if self.width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {self.width_mult}")


FULL = MobileNetV2Config()
SMALL = MobileNetV2Config(width_mult=0.35, image_size=32, num_classes=10)


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: round to a multiple of ``divisor``, never dropping below 90%.

    >>> make_divisible(32 * 0.25), make_divisible(24 * 0.35)
    (8, 8)
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_bn_relu6(
    b: GraphBuilder, x: str, prefix: str, *, in_channels: int, out_channels: int, kernel: int, stride: int, groups: int
) -> str:
    x = conv(
        b,
        x,
        f"{prefix}.0",
        in_channels=in_channels,
        out_channels=out_channels,
        kernel=kernel,
        stride=stride,
        padding=(kernel - 1) // 2,
        groups=groups,
    )
    return relu6(b, batch_norm(b, x, f"{prefix}.1", channels=out_channels), f"{prefix}.2")


def _inverted_residual(
    b: GraphBuilder, x: str, prefix: str, *, in_channels: int, out_channels: int, stride: int, expand_ratio: int
) -> str:
    hidden = round(in_channels * expand_ratio)
    y, index = x, 0
    if expand_ratio != 1:
        y = _conv_bn_relu6(
            b, y, f"{prefix}.conv.0", in_channels=in_channels, out_channels=hidden, kernel=1, stride=1, groups=1
        )
        index = 1
    y = _conv_bn_relu6(
        b, y, f"{prefix}.conv.{index}", in_channels=hidden, out_channels=hidden, kernel=3, stride=stride, groups=hidden
    )
    y = conv(b, y, f"{prefix}.conv.{index + 1}", in_channels=hidden, out_channels=out_channels, kernel=1)
    y = batch_norm(b, y, f"{prefix}.conv.{index + 2}", channels=out_channels)
    if stride == 1 and in_channels == out_channels:
        y = b.node("Add", [x, y], name=f"{prefix}.add")
    return y


def mobilenet_v2(
    *,
    batch: int = 1,
    small: bool = False,
    width_mult: float | None = None,
    image_size: int | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> onnx.ModelProto:
    """Build MobileNetV2; input ``input`` [B, 3, S, S], output ``classifier.1`` [B, num_classes].

    >>> sum(n.op_type == "Add" for n in mobilenet_v2(small=True).graph.node)
    10
    """
    config = with_overrides(
        SMALL if small else FULL, width_mult=width_mult, image_size=image_size, num_classes=num_classes
    )
    b = GraphBuilder("mobilenet_v2", seed=seed)
    b.set_metadata("config", repr(config))
    x = b.input("input", (batch, 3, config.image_size, config.image_size))
    in_channels = make_divisible(32 * config.width_mult)
    last_channels = make_divisible(1280 * max(1.0, config.width_mult))
    x = _conv_bn_relu6(b, x, "features.0", in_channels=3, out_channels=in_channels, kernel=3, stride=2, groups=1)
    feature = 1
    for expand_ratio, channels, repeats, first_stride in INVERTED_RESIDUAL_SETTING:
        out_channels = make_divisible(channels * config.width_mult)
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            x = _inverted_residual(
                b,
                x,
                f"features.{feature}",
                in_channels=in_channels,
                out_channels=out_channels,
                stride=stride,
                expand_ratio=expand_ratio,
            )
            in_channels, feature = out_channels, feature + 1
    x = _conv_bn_relu6(
        b, x, f"features.{feature}", in_channels=in_channels, out_channels=last_channels, kernel=1, stride=1, groups=1
    )
    x = global_avg_pool_flatten(b, x)
    x = dropout(b, x, "classifier.0", ratio=config.dropout)
    logits = linear(b, x, "classifier.1", in_features=last_channels, out_features=config.num_classes)
    b.output(logits, (batch, config.num_classes))
    return b.build(doc=f"mobilenet_v2 (torchvision layout) {config}")
