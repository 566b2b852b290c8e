"""A BERT-base encoder stack (post-norm), starting from the embeddings tensor.

There are no Gather/embedding tables: the input is the summed embeddings
[B, seq_len, hidden] float. Each layer is self-attention (see
``models.transformer.self_attention``), residual Add, LayerNormalization
(epsilon 1e-12), FFN with exact GELU, residual Add, LayerNormalization.

Full: 12 layers, seq 128, hidden 768, 12 heads, ffn 3072 -> 85,054,464 parameters.
Small: 2 layers, seq 16, hidden 64, 2 heads, ffn 128.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from models.builder import GraphBuilder, with_overrides
from models.transformer import AttentionShape, feed_forward, layer_norm, self_attention

LAYER_NORM_EPSILON = 1e-12  # BERT's (HuggingFace BertConfig.layer_norm_eps)


@dataclass(frozen=True, slots=True)
class BertConfig:
    num_layers: int = 12
    seq_len: int = 128
    hidden: int = 768
    heads: int = 12
    ffn: int = 3072

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} must be divisible by heads {self.heads}")
        if min(self.num_layers, self.seq_len, self.ffn) <= 0:
            raise ValueError(f"sizes must be positive: {self}")


FULL = BertConfig()
SMALL = BertConfig(num_layers=2, seq_len=16, hidden=64, heads=2, ffn=128)


def bert_base(
    *,
    batch: int = 1,
    small: bool = False,
    num_layers: int | None = None,
    seq_len: int | None = None,
    hidden: int | None = None,
    heads: int | None = None,
    ffn: int | None = None,
    seed: int = 0,
) -> onnx.ModelProto:
    """Build the encoder stack; input ``embeddings`` [B, S, hidden], output [B, S, hidden].

    The output tensor is the last layer's ``encoder.layer.<L-1>.output.norm``.

    >>> sum(n.op_type == "Softmax" for n in bert_base(small=True).graph.node)
    2
    """
    config = with_overrides(
        SMALL if small else FULL, num_layers=num_layers, seq_len=seq_len, hidden=hidden, heads=heads, ffn=ffn
    )
    b = GraphBuilder("bert_base", seed=seed)
    b.set_metadata("config", repr(config))
    shape = AttentionShape(batch=batch, seq_len=config.seq_len, hidden=config.hidden, heads=config.heads)
    x = b.input("embeddings", (batch, config.seq_len, config.hidden))
    for index in range(config.num_layers):
        prefix = f"encoder.layer.{index}"
        attended = self_attention(b, x, f"{prefix}.attention", shape)
        x = b.node("Add", [attended, x], name=f"{prefix}.attention.residual")
        x = layer_norm(b, x, f"{prefix}.attention.norm", hidden=config.hidden, epsilon=LAYER_NORM_EPSILON)
        transformed = feed_forward(b, x, f"{prefix}.ffn", hidden=config.hidden, ffn=config.ffn)
        x = b.node("Add", [transformed, x], name=f"{prefix}.output.residual")
        x = layer_norm(b, x, f"{prefix}.output.norm", hidden=config.hidden, epsilon=LAYER_NORM_EPSILON)
    b.output(x, (batch, config.seq_len, config.hidden))
    return b.build(doc=f"BERT encoder stack (post-norm) {config}")
