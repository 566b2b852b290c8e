"""Write the small real exports that tests/planner/test_import_exports.py imports, into tests/data/import/.

Each file is what torch.onnx.export wrote (the TorchScript-based exporter at opset 17 or 9, the torch.export-based
one at opset 18), from random weights of a tiny configuration, gzip'd. Each is a case that once failed to import:

- `mha-ts17`: nn.TransformerEncoderLayer, whose nn.MultiheadAttention export Concats shapes computed by Shape ops;
- `mha-dynamo18`: the same layer through the torch.export-based exporter;
- `tvvit-ts17`: torchvision's VisionTransformer, whose class token is Expanded to a shape from Shape ops;
- `hfvit-ts17`: Hugging Face ViT, the same through `expand(batch_size, -1, -1)`;
- `swin-ts17`: torchvision's Swin stage with a shifted window, whose attention mask is Added after shapes are computed;
- `bert-ts17`: Hugging Face BERT, whose token type ids come from a GatherElements over a buffer of
  max_position_embeddings (onnx.reference fails on it when the buffer is over twice as long as the ids: onnxruntime
  folds it);
- `bert-dynamo18`: the same through torch.export;
- `t5enc-ts17`: Hugging Face T5 encoder, whose relative-position buckets take log(0) while folding;
- `dropout-split-ts9`: opset 9, exported in training mode: Dropout writes a mask nobody reads, and a Split piece is
  unread.

Needs the `corpus` extra (torch, torchvision, transformers, onnxscript); tests never need it. Run:

    python benchmarks/make_import_cases.py [--out tests/data/import]
"""

from __future__ import annotations

import argparse
import gzip
import io
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import onnx
import torch
from torch import nn

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "import"


class EncoderLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x, src_mask=None, is_causal=False)  # is_causal given: the fast path does not trace


class LastHidden(nn.Module):
    """A Hugging Face model called with token ids, returning its last hidden state as a tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids).last_hidden_state


class DropoutSplit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(2 * 6 * 6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept, _ = torch.split(torch.relu(self.conv(x)), 2, dim=1)
        return self.fc(self.drop(torch.flatten(kept, 1)))


def _hf_vit() -> nn.Module:
    from transformers import ViTConfig, ViTModel
    return ViTModel(ViTConfig(image_size=16, patch_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=16))


def _bert() -> nn.Module:
    from transformers import BertConfig, BertModel
    return LastHidden(BertModel(BertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                           intermediate_size=16, max_position_embeddings=64)))


def _t5() -> nn.Module:
    from transformers import T5Config, T5EncoderModel
    return LastHidden(T5EncoderModel(T5Config(vocab_size=32, d_model=8, d_kv=4, d_ff=16, num_layers=1, num_heads=2)))


def _tv_vit() -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer
    return VisionTransformer(image_size=16, patch_size=8, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16,
                             num_classes=4)


def _swin() -> nn.Module:
    from torchvision.models.swin_transformer import SwinTransformer
    # two blocks: the second shifts its windows, which is where the attention mask is built and Added
    return SwinTransformer(patch_size=[4, 4], embed_dim=8, depths=[2], num_heads=[2], window_size=[4, 4],
                           num_classes=4)


# name -> (model, example input, dynamo exporter?, opset, training-mode export?)
CASES: dict[str, tuple[Callable[[], nn.Module], Callable[[], torch.Tensor], bool, int, bool]] = {
    "mha-ts17": (EncoderLayer, lambda: torch.randn(1, 4, 8), False, 17, False),
    "mha-dynamo18": (EncoderLayer, lambda: torch.randn(1, 4, 8), True, 18, False),
    "tvvit-ts17": (_tv_vit, lambda: torch.randn(1, 3, 16, 16), False, 17, False),
    "hfvit-ts17": (_hf_vit, lambda: torch.randn(1, 3, 16, 16), False, 17, False),
    "swin-ts17": (_swin, lambda: torch.randn(1, 3, 32, 32), False, 17, False),
    "bert-ts17": (_bert, lambda: torch.randint(0, 32, (1, 8)), False, 17, False),
    "bert-dynamo18": (_bert, lambda: torch.randint(0, 32, (1, 8)), True, 18, False),
    "t5enc-ts17": (_t5, lambda: torch.randint(0, 32, (1, 8)), False, 17, False),
    "dropout-split-ts9": (DropoutSplit, lambda: torch.randn(1, 3, 8, 8), False, 9, True),
}


def export(name: str) -> bytes:
    build, example, dynamo, opset, training = CASES[name]
    torch.manual_seed(0)
    model = build()
    model.train(training)
    mode = torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.EVAL
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' deprecation notes are not the point here
        path = Path(folder) / f"{name}.onnx"
        if dynamo:
            torch.onnx.export(model, (example(),), str(path), dynamo=True, opset_version=opset, external_data=False)
        else:
            torch.onnx.export(model, (example(),), str(path), dynamo=False, opset_version=opset, training=mode,
                              do_constant_folding=not training)
        onnx.checker.check_model(onnx.load(str(path)))
        return path.read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("| case | exporter | opset | bytes | gzip'd bytes |\n|---|---|---|---|---|")
    total = 0
    for name, (_, _, dynamo, opset, _) in CASES.items():
        data = export(name)
        packed = io.BytesIO()
        with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as stream:  # mtime 0: the same bytes every run
            stream.write(data)
        (args.out / f"{name}.onnx.gz").write_bytes(packed.getvalue())
        total += len(packed.getvalue())
        print(f"| {name} | {'torch.export' if dynamo else 'TorchScript'} | {opset} | {len(data):,} | "
              f"{len(packed.getvalue()):,} |")
    print(f"| total | | | | {total:,} |")


if __name__ == "__main__":
    main()
