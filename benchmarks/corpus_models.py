"""The models of the export corpus: torchvision, Hugging Face transformers from small configs, and torch.nn layers.

Every builder returns a module in eval mode with random weights (nothing is downloaded) and the example inputs to
export it with. Imported only by `benchmarks/corpus.py`, which needs the `[corpus]` extra (torch, torchvision,
transformers).

Sizes: the torchvision classifiers are the library's own constructors at a small input (64x64, or what a model needs);
the ones whose weights alone are over 100 MB (ViT-B/16, Swin-T, ConvNeXt-tiny) are the same classes at a smaller
config, said in `config`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True, slots=True)
class Spec:
    """One model: `build()` gives (module, {input name: example tensor}); `dynamic` names axes a user marks dynamic
    (TorchScript exporter only); `small` puts it in the checked-in `--small` set."""

    name: str
    family: str
    config: str
    build: Callable[[], tuple[nn.Module, dict[str, torch.Tensor]]]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)
    small: bool = False


def _image(size: int = 64) -> dict[str, torch.Tensor]:
    return {"pixels": torch.randn(1, 3, size, size)}


def _tv(builder: str, size: int = 64, **kwargs: Any) -> Callable[[], tuple[nn.Module, dict[str, torch.Tensor]]]:
    def build() -> tuple[nn.Module, dict[str, torch.Tensor]]:
        import torchvision

        return getattr(torchvision.models, builder)(weights=None, **kwargs), _image(size)

    return build


class _Segmentation(nn.Module):
    """torchvision's segmentation models return a dict; users export its "out" tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels)["out"]


def _segmentation(builder: str) -> Callable[[], tuple[nn.Module, dict[str, torch.Tensor]]]:
    def build() -> tuple[nn.Module, dict[str, torch.Tensor]]:
        from torchvision.models import segmentation

        model = getattr(segmentation, builder)(weights=None, weights_backbone=None, num_classes=21)
        return _Segmentation(model), _image(64)

    return build


def _vit_tv() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    from torchvision.models.vision_transformer import VisionTransformer

    return VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=4, hidden_dim=128, mlp_dim=256,
                             num_classes=10), _image(64)


def _swin_tv() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    from torchvision.models.swin_transformer import SwinTransformer

    return SwinTransformer(patch_size=[4, 4], embed_dim=32, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4],
                           num_classes=10), _image(64)


def _convnext_tv() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    settings = [CNBlockConfig(32, 64, 1), CNBlockConfig(64, 128, 1), CNBlockConfig(128, 256, 1),
                CNBlockConfig(256, None, 1)]
    return ConvNeXt(settings, num_classes=10), _image(64)


class _Hidden(nn.Module):
    """An HF model's last hidden state (what a user exports), from keyword inputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        names = ["pixel_values"] if inputs[0].is_floating_point() else ["input_ids", "attention_mask"]
        return self.model(**dict(zip(names, inputs, strict=False)), return_dict=False)[0]


def _tokens(vocab: int, sequence: int = 32, mask: bool = False) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = {"input_ids": torch.randint(0, vocab, (1, sequence), generator=generator)}
    return ids | ({"attention_mask": torch.ones(1, sequence, dtype=torch.int64)} if mask else {})


def _hf(config_name: str, model_name: str, inputs: Callable[[], dict[str, torch.Tensor]],
        **config: Any) -> Callable[[], tuple[nn.Module, dict[str, torch.Tensor]]]:
    def build() -> tuple[nn.Module, dict[str, torch.Tensor]]:
        import transformers

        settings = getattr(transformers, config_name)(**config)
        model = getattr(transformers, model_name)(settings)
        return _Hidden(model.eval()), inputs()

    return build


def _encoder_layer(d_model: int) -> Callable[[], tuple[nn.Module, dict[str, torch.Tensor]]]:
    def build() -> tuple[nn.Module, dict[str, torch.Tensor]]:
        layer = nn.TransformerEncoderLayer(d_model=d_model, nhead=2, dim_feedforward=2 * d_model, batch_first=True)
        return layer, {"x": torch.randn(1, 16, d_model)}

    return build


class TinyConvNet(nn.Module):
    """A few hundred kB conv net in the style of a user's own: conv-bn-relu blocks, a residual add, pooling, a head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                   nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16))
        self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(32, 10)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.stem(pixels)
        x = torch.relu(x + self.block(x))
        x = self.down(x).mean(dim=(2, 3))
        return self.head(x)


def _tiny_conv() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    return TinyConvNet(), _image(32)


_TEXT_DYNAMIC = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
_BERT = {"vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
         "intermediate_size": 128, "max_position_embeddings": 64}
_BERT_TINY = _BERT | {"vocab_size": 100, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1}

SPECS: list[Spec] = [
    Spec("tinyconv", "torch.nn", "TinyConvNet, 32x32", _tiny_conv, small=True),
    Spec("encoder_layer_tiny", "torch.nn", "nn.TransformerEncoderLayer(d_model=32, nhead=2), 16 tokens",
         _encoder_layer(32), small=True),
    Spec("bert_tiny", "transformers", "BertModel, 1 layer, hidden 32, vocab 100, 32 tokens",
         _hf("BertConfig", "BertModel", lambda: _tokens(100, mask=True), **_BERT_TINY), _TEXT_DYNAMIC, small=True),
    Spec("resnet18", "torchvision", "resnet18, 64x64", _tv("resnet18")),
    Spec("mobilenet_v3_small", "torchvision", "mobilenet_v3_small, 64x64", _tv("mobilenet_v3_small")),
    Spec("efficientnet_b0", "torchvision", "efficientnet_b0, 64x64", _tv("efficientnet_b0")),
    Spec("convnext", "torchvision", "ConvNeXt, 4 stages of 1 block, 32-256 channels, 64x64", _convnext_tv),
    Spec("regnet_x_400mf", "torchvision", "regnet_x_400mf, 64x64", _tv("regnet_x_400mf")),
    Spec("densenet121", "torchvision", "densenet121, 64x64", _tv("densenet121")),
    Spec("googlenet", "torchvision", "googlenet (no aux logits), 64x64",
         _tv("googlenet", aux_logits=False, init_weights=True)),
    Spec("shufflenet_v2", "torchvision", "shufflenet_v2_x0_5, 64x64", _tv("shufflenet_v2_x0_5")),
    Spec("squeezenet", "torchvision", "squeezenet1_1, 64x64", _tv("squeezenet1_1")),
    Spec("alexnet", "torchvision", "alexnet, 64x64", _tv("alexnet", size=64)),
    Spec("vit", "torchvision", "VisionTransformer, 2 layers, hidden 128, patch 16, 64x64", _vit_tv),
    Spec("swin", "torchvision", "SwinTransformer, depths 2-2, embed 32, window 4, 64x64", _swin_tv),
    Spec("deeplabv3", "torchvision", "deeplabv3_mobilenet_v3_large, 21 classes, 64x64",
         _segmentation("deeplabv3_mobilenet_v3_large")),
    Spec("lraspp", "torchvision", "lraspp_mobilenet_v3_large, 21 classes, 64x64",
         _segmentation("lraspp_mobilenet_v3_large")),
    Spec("encoder_layer", "torch.nn", "nn.TransformerEncoderLayer(d_model=64, nhead=2), 16 tokens",
         _encoder_layer(64)),
    Spec("bert", "transformers", "BertModel, 2 layers, hidden 64, 32 tokens",
         _hf("BertConfig", "BertModel", lambda: _tokens(1000, mask=True), **_BERT), _TEXT_DYNAMIC),
    Spec("distilbert", "transformers", "DistilBertModel, 2 layers, dim 64, 32 tokens",
         _hf("DistilBertConfig", "DistilBertModel", lambda: _tokens(1000, mask=True), vocab_size=1000, dim=64,
             n_layers=2, n_heads=2, hidden_dim=128, max_position_embeddings=64), _TEXT_DYNAMIC),
    Spec("gpt2", "transformers", "GPT2Model, 2 layers, 64 wide, 32 tokens",
         _hf("GPT2Config", "GPT2Model", lambda: _tokens(1000), vocab_size=1000, n_embd=64, n_layer=2, n_head=2,
             n_positions=64, use_cache=False), {"input_ids": {0: "batch", 1: "sequence"}}),
    Spec("llama", "transformers", "LlamaModel, 2 layers, hidden 64, 32 tokens",
         _hf("LlamaConfig", "LlamaModel", lambda: _tokens(1000), vocab_size=1000, hidden_size=64,
             intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
             max_position_embeddings=64, use_cache=False), {"input_ids": {0: "batch", 1: "sequence"}}),
    Spec("t5_encoder", "transformers", "T5EncoderModel, 2 layers, d_model 64, 32 tokens",
         _hf("T5Config", "T5EncoderModel", lambda: _tokens(1000), vocab_size=1000, d_model=64, d_kv=32, d_ff=128,
             num_layers=2, num_heads=2, use_cache=False), {"input_ids": {0: "batch", 1: "sequence"}}),
    Spec("hf_vit", "transformers", "ViTModel, 2 layers, hidden 64, patch 8, 32x32",
         _hf("ViTConfig", "ViTModel", lambda: {"pixel_values": torch.randn(1, 3, 32, 32)}, image_size=32,
             patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)),
]
