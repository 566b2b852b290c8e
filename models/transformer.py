"""Transformer layers shared by bert_base and vit, in the node pattern PyTorch exports.

Why this exact pattern: the planner matches attention and GELU from primitive
ops, so the graphs spell them the way ``torch.onnx.export`` does at opset 17 --
MatMul + Add for Linear, Reshape/Transpose for heads, Div by sqrt(head_dim),
Softmax(axis=-1), LayerNormalization, and GELU as x * 0.5 * (1 + Erf(x / sqrt(2))).
Activations are [B, S, hidden] throughout; every Reshape target is a static
int64 initializer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.builder import GraphBuilder

LINEAR_BIAS_STD = 0.01  # small, so biases nudge but never dominate He-scaled activations
LAYER_NORM_AFFINE_STD = 0.02  # scale ~ 1 +- 0.02, bias ~ 0 +- 0.02


@dataclass(frozen=True, slots=True)
class AttentionShape:
    """Static sizes of one self-attention block: ``hidden = heads * head_dim``."""

    batch: int
    seq_len: int
    hidden: int
    heads: int

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} must be divisible by heads {self.heads}")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def linear(b: GraphBuilder, x: str, name: str, *, in_features: int, out_features: int) -> str:
    """``torch.nn.Linear`` on [..., in] as MatMul(x, W[in, out]) then Add(bias); names ``<name>.matmul/.add``."""
    weight = b.he_normal(f"{name}.weight", (in_features, out_features), fan_in=in_features)
    bias = b.normal(f"{name}.bias", (out_features,), std=LINEAR_BIAS_STD)
    return b.node("Add", [b.node("MatMul", [x, weight], name=f"{name}.matmul"), bias], name=f"{name}.add")


def layer_norm(b: GraphBuilder, x: str, name: str, *, hidden: int, epsilon: float) -> str:
    """LayerNormalization (opset 17) over the last axis, scale ~ 1 and bias ~ 0."""
    scale = b.normal(f"{name}.weight", (hidden,), mean=1.0, std=LAYER_NORM_AFFINE_STD)
    bias = b.normal(f"{name}.bias", (hidden,), std=LAYER_NORM_AFFINE_STD)
    return b.node("LayerNormalization", [x, scale, bias], name=name, axis=-1, epsilon=epsilon)


def gelu(b: GraphBuilder, x: str, name: str) -> str:
    """Exact GELU as PyTorch exports it: Div(sqrt 2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5)."""
    scaled = b.node("Div", [x, b.scalar("gelu.sqrt2", math.sqrt(2.0))], name=f"{name}.div")
    erf = b.node("Erf", [scaled], name=f"{name}.erf")
    shifted = b.node("Add", [erf, b.scalar("gelu.one", 1.0)], name=f"{name}.add")
    gated = b.node("Mul", [x, shifted], name=f"{name}.mul")
    return b.node("Mul", [gated, b.scalar("gelu.half", 0.5)], name=f"{name}.mul_half")


def _split_heads(b: GraphBuilder, x: str, name: str, shape: AttentionShape, *, perm: tuple[int, ...]) -> str:
    s = shape
    target = b.int64s(f"shape.{s.batch}x{s.seq_len}x{s.heads}x{s.head_dim}", (s.batch, s.seq_len, s.heads, s.head_dim))
    return b.node(
        "Transpose", [b.node("Reshape", [x, target], name=f"{name}.reshape")], name=f"{name}.transpose", perm=list(perm)
    )


def self_attention(b: GraphBuilder, x: str, name: str, shape: AttentionShape) -> str:
    """Multi-head self-attention without mask, including the output projection.

    Q, V go to [B, H, S, D]; K goes straight to [B, H, D, S] so scores are a
    plain MatMul. Scores are divided by sqrt(D), Softmax(axis=-1), applied to V,
    transposed back to [B, S, H, D] and reshaped to [B, S, hidden].
    """
    s = shape
    q = linear(b, x, f"{name}.query", in_features=s.hidden, out_features=s.hidden)
    k = linear(b, x, f"{name}.key", in_features=s.hidden, out_features=s.hidden)
    v = linear(b, x, f"{name}.value", in_features=s.hidden, out_features=s.hidden)
    q = _split_heads(b, q, f"{name}.query", s, perm=(0, 2, 1, 3))
    k = _split_heads(b, k, f"{name}.key", s, perm=(0, 2, 3, 1))
    v = _split_heads(b, v, f"{name}.value", s, perm=(0, 2, 1, 3))
    scores = b.node("MatMul", [q, k], name=f"{name}.scores")
    scores = b.node(
        "Div", [scores, b.scalar(f"attention.sqrt_head_dim_{s.head_dim}", math.sqrt(s.head_dim))], name=f"{name}.scale"
    )
    probs = b.node("Softmax", [scores], name=f"{name}.softmax", axis=-1)
    context = b.node("MatMul", [probs, v], name=f"{name}.context")
    context = b.node("Transpose", [context], name=f"{name}.context.transpose", perm=[0, 2, 1, 3])
    merged = b.int64s(f"shape.{s.batch}x{s.seq_len}x{s.hidden}", (s.batch, s.seq_len, s.hidden))
    context = b.node("Reshape", [context, merged], name=f"{name}.context.reshape")
    return linear(b, context, f"{name}.output", in_features=s.hidden, out_features=s.hidden)


def feed_forward(b: GraphBuilder, x: str, name: str, *, hidden: int, ffn: int) -> str:
    """Linear(hidden -> ffn), GELU, Linear(ffn -> hidden)."""
    y = linear(b, x, f"{name}.fc1", in_features=hidden, out_features=ffn)
    y = gelu(b, y, f"{name}.gelu")
    return linear(b, y, f"{name}.fc2", in_features=ffn, out_features=hidden)
