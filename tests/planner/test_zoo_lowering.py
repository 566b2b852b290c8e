"""Every zoo model imports and lowers; MAC totals agree with an independent count and the published figures."""

from __future__ import annotations

import math

import pytest

import models
from planner.graph import load_graph
from planner.inspect import op_rows, totals
from planner.ops import lower
from tests.models.macs import count_macs

FULL_SIZE_SLOW = {"vgg16", "bert_base"}  # hundreds of MB of weights to build


@pytest.mark.parametrize("name", sorted(models.ZOO))
def test_small_variant_lowers_with_independent_mac_count(name: str) -> None:
    model = models.build(name, small=True)
    lowered = lower(load_graph(model))
    assert lowered.macs == count_macs(model)
    assert len(op_rows(lowered)) == len(lowered.graph.nodes)
    total = totals(lowered)
    assert 0 < total.compulsory_bytes <= total.param_bytes + total.activation_bytes + 4 * lowered.graph.tensors[
        lowered.graph.inputs[0]].numel


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in FULL_SIZE_SLOW else n
                                  for n in sorted(models.ZOO)])
def test_full_size_lowers(name: str) -> None:
    model = models.build(name)
    lowered = lower(load_graph(model, dtype="bf16"))
    assert lowered.macs == count_macs(model)


def test_resnet50_matches_published_figures() -> None:
    model = models.build("resnet50")
    lowered = lower(load_graph(model))
    total = totals(lowered)
    bn_running_stats = sum(2 * lowered.graph.tensors[node.inputs[1]].numel for node in lowered.graph.nodes
                           if node.op_type == "BatchNormalization")
    # torchvision: 25,557,032 trainable parameters; BN running mean and variance are read too
    assert total.param_bytes == 4 * (25_557_032 + bn_running_stats)
    assert math.isclose(total.macs, 4.09e9, rel_tol=0.01)
    # compulsory traffic: weights, the 1x3x224x224 image and the 1000 logits, once each
    assert total.compulsory_bytes == total.param_bytes + 4 * (3 * 224 * 224 + 1000)


def test_batch_and_dtype_scale_the_totals() -> None:
    one = totals(lower(load_graph(models.build("resnet18", small=True), dtype="fp32")))
    eight = totals(lower(load_graph(models.build("resnet18", small=True, batch=8), dtype="bf16")))
    assert eight.macs == 8 * one.macs
    assert eight.param_bytes * 2 == one.param_bytes
    assert eight.activation_bytes == 8 * one.activation_bytes // 2
