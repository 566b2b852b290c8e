"""A small Vision Transformer (pre-norm, class token), CIFAR-sized.

Config ``vit`` (full): 32x32 image, 4x4 patches (64 tokens + class token),
hidden 192, 6 layers, 3 heads (head_dim 64), MLP 768, 10 classes, LayerNorm
epsilon 1e-6 -> 2,693,578 parameters. It is ViT-Tiny's width on a CIFAR grid.
Small: 16x16 image, 4x4 patches, hidden 32, 2 layers, 2 heads, MLP 64, 10 classes.

Graph: Conv patch embedding (kernel = stride = patch), Reshape [B, hidden, N] +
Transpose to tokens [B, N, hidden], Concat the class token, Add the position
embedding, pre-norm encoder layers (LayerNormalization, attention as in
``models.transformer``, residual Add, LayerNormalization, MLP with exact GELU,
residual Add), final LayerNormalization, Slice the class token on the token
axis, Squeeze to [B, hidden], Gemm head.

The class token is an initializer of shape [B, 1, hidden] whose rows are one
learned vector: Expand/Tile are outside the planner's op list, so the batch
broadcast is done at build time. ``count_parameters`` therefore sees B copies;
quote parameter counts at batch 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from models.builder import GraphBuilder, with_overrides
from models.layers import conv
from models.layers import linear as gemm_linear
from models.transformer import AttentionShape, feed_forward, layer_norm, self_attention

LAYER_NORM_EPSILON = 1e-6  # timm's ViT
TOKEN_STD = 0.02  # class token and position embedding scale, as timm's trunc_normal_(std=0.02)


@dataclass(frozen=True, slots=True)
class VitConfig:
    image_size: int = 32
    patch: int = 4
    hidden: int = 192
    num_layers: int = 6
    heads: int = 3
    mlp: int = 768
    num_classes: int = 10

    def __post_init__(self) -> None:
        if self.image_size % self.patch:
            raise ValueError(f"image_size {self.image_size} must be divisible by patch {self.patch}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} must be divisible by heads {self.heads}")
        if min(self.num_layers, self.mlp, self.num_classes) <= 0:
            raise ValueError(f"sizes must be positive: {self}")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch) ** 2


FULL = VitConfig()
SMALL = VitConfig(image_size=16, patch=4, hidden=32, num_layers=2, heads=2, mlp=64)


def vit(
    *,
    batch: int = 1,
    small: bool = False,
    image_size: int | None = None,
    patch: int | None = None,
    hidden: int | None = None,
    num_layers: int | None = None,
    heads: int | None = None,
    mlp: int | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> onnx.ModelProto:
    """Build the ViT; input ``input`` [B, 3, S, S], output ``head`` [B, num_classes].

    >>> [n.op_type for n in vit(small=True).graph.node][:4]
    ['Conv', 'Reshape', 'Transpose', 'Concat']
    """
    config = with_overrides(
        SMALL if small else FULL,
        image_size=image_size,
        patch=patch,
        hidden=hidden,
        num_layers=num_layers,
        heads=heads,
        mlp=mlp,
        num_classes=num_classes,
    )
    b = GraphBuilder("vit", seed=seed)
    b.set_metadata("config", repr(config))
    tokens = config.num_patches + 1
    d = config.hidden
    x = b.input("input", (batch, 3, config.image_size, config.image_size))
    x = conv(b, x, "patch_embed", in_channels=3, out_channels=d, kernel=config.patch, stride=config.patch, bias=True)
    flat_shape = b.int64s(f"shape.{batch}x{d}x{config.num_patches}", (batch, d, config.num_patches))
    x = b.node("Reshape", [x, flat_shape], name="patch_embed.flatten")
    x = b.node("Transpose", [x], name="patch_embed.transpose", perm=[0, 2, 1])
    cls_row = b.draw_normal((1, 1, d), std=TOKEN_STD)
    cls_token = b.tensor("cls_token", np.repeat(cls_row, batch, axis=0))
    x = b.node("Concat", [cls_token, x], name="cls.concat", axis=1)
    x = b.node("Add", [x, b.normal("pos_embed", (1, tokens, d), std=TOKEN_STD)], name="pos_embed.add")
    shape = AttentionShape(batch=batch, seq_len=tokens, hidden=d, heads=config.heads)
    for index in range(config.num_layers):
        prefix = f"blocks.{index}"
        y = layer_norm(b, x, f"{prefix}.norm1", hidden=d, epsilon=LAYER_NORM_EPSILON)
        x = b.node("Add", [x, self_attention(b, y, f"{prefix}.attn", shape)], name=f"{prefix}.attn.residual")
        y = layer_norm(b, x, f"{prefix}.norm2", hidden=d, epsilon=LAYER_NORM_EPSILON)
        x = b.node(
            "Add", [x, feed_forward(b, y, f"{prefix}.mlp", hidden=d, ffn=config.mlp)], name=f"{prefix}.mlp.residual"
        )
    x = layer_norm(b, x, "norm", hidden=d, epsilon=LAYER_NORM_EPSILON)
    x = b.node(
        "Slice",
        [x, b.int64s("cls.start", (0,)), b.int64s("cls.end", (1,)), b.int64s("cls.axis", (1,))],
        name="cls.slice",
    )
    x = b.node("Squeeze", [x, b.int64s("cls.axis", (1,))], name="cls.squeeze")
    logits = gemm_linear(b, x, "head", in_features=d, out_features=config.num_classes)
    b.output(logits, (batch, config.num_classes))
    return b.build(doc=f"ViT (pre-norm, class token) {config}")
