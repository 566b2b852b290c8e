"""Convolutional-network layers shared by the CNN families (cnn, resnet, mobilenet, vgg).

Why: each function emits the same node pattern a PyTorch export of the
matching ``torch.nn`` module would (Conv, BatchNormalization, Gemm with
``transB=1``...), with initializers named after the torchvision module path,
so graphs can be compared against torchvision by name.
"""

from __future__ import annotations

from models.builder import GraphBuilder

BIAS_STD = 0.01  # small, so biases nudge but never dominate He-scaled activations
BN_AFFINE_STD = 0.05  # gamma ~ 1 +- 0.05, beta ~ 0 +- 0.05
BN_EPSILON = 1e-5  # torch.nn.BatchNorm2d default


def conv(
    b: GraphBuilder,
    x: str,
    name: str,
    *,
    in_channels: int,
    out_channels: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    groups: int = 1,
    bias: bool = False,
) -> str:
    """Square Conv with He-normal weight ``[out, in/groups, k, k]`` and optional bias.

    >>> b = GraphBuilder("g", seed=0); x = b.input("x", (1, 3, 8, 8))
    >>> conv(b, x, "conv1", in_channels=3, out_channels=4, kernel=3, padding=1)
    'conv1'
    """
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{name}: channels {in_channels}->{out_channels} not divisible by groups={groups}")
    fan_in = in_channels // groups * kernel * kernel
    inputs = [x, b.he_normal(f"{name}.weight", (out_channels, in_channels // groups, kernel, kernel), fan_in=fan_in)]
    if bias:
        inputs.append(b.normal(f"{name}.bias", (out_channels,), std=BIAS_STD))
    return b.node(
        "Conv",
        inputs,
        name=name,
        kernel_shape=[kernel, kernel],
        strides=[stride, stride],
        pads=[padding] * 4,
        dilations=[1, 1],
        group=groups,
    )


def batch_norm(b: GraphBuilder, x: str, name: str, *, channels: int) -> str:
    """Inference BatchNormalization with gamma ~ 1, small beta and mean, and variance ~ 1.

    Why these statistics: with var ~ 1 and mean ~ 0 the BN is close to the
    identity, so the He-scaled convolutions alone set the activation scale.
    """
    scale = b.normal(f"{name}.weight", (channels,), mean=1.0, std=BN_AFFINE_STD)
    shift = b.normal(f"{name}.bias", (channels,), std=BN_AFFINE_STD)
    mean = b.normal(f"{name}.running_mean", (channels,), std=BN_AFFINE_STD)
    var = b.uniform(f"{name}.running_var", (channels,), low=0.9, high=1.1)
    return b.node("BatchNormalization", [x, scale, shift, mean, var], name=name, epsilon=BN_EPSILON)


def relu(b: GraphBuilder, x: str, name: str) -> str:
    return b.node("Relu", [x], name=name)


def relu6(b: GraphBuilder, x: str, name: str) -> str:
    """ReLU6 as ``Clip(x, 0, 6)`` with min/max as (shared) scalar inputs, the opset >= 11 form."""
    return b.node("Clip", [x, b.scalar("relu6.min", 0.0), b.scalar("relu6.max", 6.0)], name=name)


def linear(b: GraphBuilder, x: str, name: str, *, in_features: int, out_features: int) -> str:
    """``torch.nn.Linear`` as Gemm(x, W[out, in], bias, transB=1) on a 2-D input."""
    weight = b.he_normal(f"{name}.weight", (out_features, in_features), fan_in=in_features)
    bias = b.normal(f"{name}.bias", (out_features,), std=BIAS_STD)
    return b.node("Gemm", [x, weight, bias], name=name, transB=1)


def dropout(b: GraphBuilder, x: str, name: str, *, ratio: float) -> str:
    """Inference Dropout (identity: no training_mode input); the ratio is kept for fidelity."""
    return b.node("Dropout", [x, b.scalar(f"dropout.ratio_{ratio:g}", ratio)], name=name)


def max_pool(b: GraphBuilder, x: str, name: str, *, kernel: int, stride: int, padding: int = 0) -> str:
    return b.node(
        "MaxPool", [x], name=name, kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[padding] * 4
    )


def global_avg_pool_flatten(b: GraphBuilder, x: str, prefix: str = "") -> str:
    """GlobalAveragePool then Flatten(axis=1): [B, C, H, W] -> [B, C]."""
    pooled = b.node("GlobalAveragePool", [x], name=f"{prefix}avgpool")
    return b.node("Flatten", [pooled], name=f"{prefix}flatten", axis=1)
