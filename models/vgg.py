"""torchvision VGG-16 (configuration "D", no batch norm).

13 Conv 3x3/p1 (with bias) + Relu in five stages, each closed by MaxPool 2x2/s2;
Flatten; classifier Gemm + Relu + Dropout, Gemm + Relu + Dropout, Gemm. Names
follow torchvision's ``features.<i>`` / ``classifier.<i>`` indices.

torchvision's AdaptiveAvgPool2d((7, 7)) is omitted: at 224x224 the features are
already 7x7 so it is the identity. At other sizes the classifier's input is
``C * (S/32)**2`` instead of torchvision's fixed 25,088 (no 7x7 replication).

Full: 224x224, 1000 classes -> 138,357,544 parameters, ~15.5 GMACs.
Small: widths / 8 (8..64 channels), 32x32 (features end at 1x1), classifier 64 -> 256 -> 256 -> 10.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from models.builder import GraphBuilder, with_overrides
from models.layers import conv, dropout, linear, max_pool, relu

# Channel counts per conv, "M" for a max pool: torchvision cfgs["D"].
VGG16_LAYOUT: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


@dataclass(frozen=True, slots=True)
class VggConfig:
    width_divisor: int = 1  # divides every conv width (64..512)
    image_size: int = 224
    classifier_width: int = 4096
    num_classes: int = 1000
    dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.image_size % 32:
            raise ValueError(f"image_size {self.image_size} must be divisible by 32 (five 2x2 pools)")
        if 64 % self.width_divisor:
            raise ValueError(f"width_divisor {self.width_divisor} must divide 64")


FULL = VggConfig()
SMALL = VggConfig(width_divisor=8, image_size=32, classifier_width=256, num_classes=10)


def vgg16(
    *,
    batch: int = 1,
    small: bool = False,
    width_divisor: int | None = None,
    image_size: int | None = None,
    classifier_width: int | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> onnx.ModelProto:
    """Build VGG-16; input ``input`` [B, 3, S, S], output ``classifier.6`` [B, num_classes].

    >>> sum(n.op_type == "Conv" for n in vgg16(small=True).graph.node)
    13
    """
    config = with_overrides(
        SMALL if small else FULL,
        width_divisor=width_divisor,
        image_size=image_size,
        classifier_width=classifier_width,
        num_classes=num_classes,
    )
    b = GraphBuilder("vgg16", seed=seed)
    b.set_metadata("config", repr(config))
    x = b.input("input", (batch, 3, config.image_size, config.image_size))
    in_channels, index = 3, 0
    for item in VGG16_LAYOUT:
        if item == "M":
            x = max_pool(b, x, f"features.{index}", kernel=2, stride=2)
            index += 1
            continue
        out_channels = int(item) // config.width_divisor
        x = conv(
            b,
            x,
            f"features.{index}",
            in_channels=in_channels,
            out_channels=out_channels,
            kernel=3,
            padding=1,
            bias=True,
        )
        x = relu(b, x, f"features.{index + 1}")
        in_channels, index = out_channels, index + 2
    side = config.image_size // 32
    x = b.node("Flatten", [x], name="flatten", axis=1)
    width = config.classifier_width
    x = linear(b, x, "classifier.0", in_features=in_channels * side * side, out_features=width)
    x = dropout(b, relu(b, x, "classifier.1"), "classifier.2", ratio=config.dropout)
    x = linear(b, x, "classifier.3", in_features=width, out_features=width)
    x = dropout(b, relu(b, x, "classifier.4"), "classifier.5", ratio=config.dropout)
    logits = linear(b, x, "classifier.6", in_features=width, out_features=config.num_classes)
    b.output(logits, (batch, config.num_classes))
    return b.build(doc=f"vgg16 (torchvision layout, no AdaptiveAvgPool) {config}")
