"""torchvision ResNet-18 and ResNet-50 (v1.5), in model-zoo style.

Conv (no bias) + BatchNormalization + Relu, residual Add, stem MaxPool 3x3/s2/p1,
GlobalAveragePool, Flatten, Gemm head. Node and weight names follow torchvision
(``layer1.0.conv1``, ``layer1.0.downsample.0``, ``fc``). ResNet-50 is v1.5: the
stride sits on the 3x3 conv of the bottleneck, not on the first 1x1.

Full size: 224x224, 1000 classes; resnet18 11,689,512 and resnet50 25,557,032
parameters (BN running statistics excluded, as torchvision does).
Small: same blocks with all widths divided by 8 (stem 8 channels), 32x32, 10 classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import onnx

from models.builder import GraphBuilder, with_overrides
from models.layers import batch_norm, conv, global_avg_pool_flatten, linear, max_pool, relu

BlockKind = Literal["basic", "bottleneck"]
EXPANSION = {"basic": 1, "bottleneck": 4}


@dataclass(frozen=True, slots=True)
class ResNetConfig:
    block: BlockKind
    blocks_per_stage: tuple[int, int, int, int]
    base_width: int = 64  # stem and layer1 width; torchvision's 64
    image_size: int = 224
    num_classes: int = 1000

    def __post_init__(self) -> None:
        if self.image_size % 32:
            raise ValueError(f"image_size {self.image_size} must be divisible by 32 (the network's total stride)")
        if self.block not in EXPANSION:
            raise ValueError(f"unknown block {self.block!r}; known: {sorted(EXPANSION)}")


def _shortcut(b: GraphBuilder, x: str, prefix: str, *, in_channels: int, out_channels: int, stride: int) -> str:
    if stride == 1 and in_channels == out_channels:
        return x
    x = conv(
        b, x, f"{prefix}.downsample.0", in_channels=in_channels, out_channels=out_channels, kernel=1, stride=stride
    )
    return batch_norm(b, x, f"{prefix}.downsample.1", channels=out_channels)


def _basic_block(b: GraphBuilder, x: str, prefix: str, *, in_channels: int, planes: int, stride: int) -> str:
    identity = _shortcut(b, x, prefix, in_channels=in_channels, out_channels=planes, stride=stride)
    y = conv(b, x, f"{prefix}.conv1", in_channels=in_channels, out_channels=planes, kernel=3, stride=stride, padding=1)
    y = relu(b, batch_norm(b, y, f"{prefix}.bn1", channels=planes), f"{prefix}.relu1")
    y = conv(b, y, f"{prefix}.conv2", in_channels=planes, out_channels=planes, kernel=3, padding=1)
    y = batch_norm(b, y, f"{prefix}.bn2", channels=planes)
    return relu(b, b.node("Add", [y, identity], name=f"{prefix}.add"), f"{prefix}.relu2")


def _bottleneck(b: GraphBuilder, x: str, prefix: str, *, in_channels: int, planes: int, stride: int) -> str:
    out_channels = planes * EXPANSION["bottleneck"]
    identity = _shortcut(b, x, prefix, in_channels=in_channels, out_channels=out_channels, stride=stride)
    y = conv(b, x, f"{prefix}.conv1", in_channels=in_channels, out_channels=planes, kernel=1)
    y = relu(b, batch_norm(b, y, f"{prefix}.bn1", channels=planes), f"{prefix}.relu1")
    y = conv(b, y, f"{prefix}.conv2", in_channels=planes, out_channels=planes, kernel=3, stride=stride, padding=1)
    y = relu(b, batch_norm(b, y, f"{prefix}.bn2", channels=planes), f"{prefix}.relu2")
    y = conv(b, y, f"{prefix}.conv3", in_channels=planes, out_channels=out_channels, kernel=1)
    y = batch_norm(b, y, f"{prefix}.bn3", channels=out_channels)
    return relu(b, b.node("Add", [y, identity], name=f"{prefix}.add"), f"{prefix}.relu3")


def build_resnet(config: ResNetConfig, *, batch: int, seed: int, name: str) -> onnx.ModelProto:
    """Build any torchvision-layout ResNet from an explicit config."""
    b = GraphBuilder(name, seed=seed)
    b.set_metadata("config", repr(config))
    x = b.input("input", (batch, 3, config.image_size, config.image_size))
    width = config.base_width
    x = conv(b, x, "conv1", in_channels=3, out_channels=width, kernel=7, stride=2, padding=3)
    x = relu(b, batch_norm(b, x, "bn1", channels=width), "relu")
    x = max_pool(b, x, "maxpool", kernel=3, stride=2, padding=1)
    block = _basic_block if config.block == "basic" else _bottleneck
    in_channels = width
    for stage, num_blocks in enumerate(config.blocks_per_stage):
        planes = width * 2**stage
        for index in range(num_blocks):
            stride = 2 if stage > 0 and index == 0 else 1
            x = block(b, x, f"layer{stage + 1}.{index}", in_channels=in_channels, planes=planes, stride=stride)
            in_channels = planes * EXPANSION[config.block]
    x = global_avg_pool_flatten(b, x)
    logits = linear(b, x, "fc", in_features=in_channels, out_features=config.num_classes)
    b.output(logits, (batch, config.num_classes))
    return b.build(doc=f"{name} (torchvision layout) {config}")


def _preset(block: BlockKind, blocks: tuple[int, int, int, int], small: bool) -> ResNetConfig:
    if small:
        return ResNetConfig(block, blocks, base_width=8, image_size=32, num_classes=10)
    return ResNetConfig(block, blocks)


def resnet18(
    *,
    batch: int = 1,
    small: bool = False,
    base_width: int | None = None,
    image_size: int | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> onnx.ModelProto:
    """torchvision resnet18: BasicBlock x (2, 2, 2, 2); input ``input`` [B, 3, S, S], output ``fc``.

    >>> resnet18(small=True).graph.output[0].name
    'fc'
    """
    preset = _preset("basic", (2, 2, 2, 2), small)
    config = with_overrides(preset, base_width=base_width, image_size=image_size, num_classes=num_classes)
    return build_resnet(config, batch=batch, seed=seed, name="resnet18")


def resnet50(
    *,
    batch: int = 1,
    small: bool = False,
    base_width: int | None = None,
    image_size: int | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> onnx.ModelProto:
    """torchvision resnet50 (v1.5): Bottleneck x (3, 4, 6, 3); input ``input`` [B, 3, S, S], output ``fc``.

    >>> sum(n.op_type == "Add" for n in resnet50(small=True).graph.node)
    16
    """
    preset = _preset("bottleneck", (3, 4, 6, 3), small)
    config = with_overrides(preset, base_width=base_width, image_size=image_size, num_classes=num_classes)
    return build_resnet(config, batch=batch, seed=seed, name="resnet50")
