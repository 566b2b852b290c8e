"""The prices per-op staging chooses by (planner.tiling_prices.op_choices) are the bytes its tiles really move."""

from __future__ import annotations

import pytest

import models
from planner.graph import load_graph
from planner.ops import lower
from planner.schedule.op_tiles import _builder
from planner.staging.op_tilings import _full_order, _loaded
from planner.staging.split import _split_tiles, split_dim
from planner.tiling import blocks, extents, tile_boxes
from planner.tiling_prices import op_choices
from simulator.machine_file import load_machine


@pytest.mark.parametrize(("name", "scratchpad"), [("mlp", "8KiB"), ("cnn", "16KiB")])
def test_prices_are_the_bytes_the_tiles_move(name: str, scratchpad: str) -> None:
    lowered = lower(load_graph(models.build(name, small=True), dtype="bf16"))
    machine = load_machine("edge-npu", scratchpad=scratchpad)
    builder = _builder(lowered, machine)
    capacity = machine.scratchpad.partition_bytes
    checked = split_checked = 0
    for stmt in lowered.statements:
        if stmt.indirect is not None:
            continue
        for price, sizes, order in op_choices(lowered, stmt, machine, capacity)[:3]:
            tiles = [(block, *tile_boxes(stmt, block)) for block in blocks(stmt, dict(sizes), _full_order(stmt, order))]
            moved = _loaded(stmt, tiles, lowered.graph.elem_bytes, frozenset()) + sum(
                box.numel * lowered.graph.elem_bytes(t) for _, _, writes in tiles for t, box in writes.items())
            assert price == moved, (stmt.name, sizes, order)
            checked += 1
        reduction = split_dim(builder, stmt)
        if reduction is None:
            continue
        for price, sizes, _ in op_choices(lowered, stmt, machine, capacity, split=reduction)[:3]:
            slices = _split_tiles(builder, stmt, reduction, dict(sizes))[0]
            hi = extents(stmt)[reduction][1]  # every slice loads its inputs; an output tile is stored at its last
            moved = sum(box.numel * lowered.graph.elem_bytes(t)
                        for _, _, reads, _ in slices for t, box in reads.items())
            moved += sum(box.numel * lowered.graph.elem_bytes(t) for _, step, _, writes in slices if step[1] == hi
                         for t, box in writes.items())
            assert price == moved, (stmt.name, sizes)
            split_checked += 1
            checked += 1
    assert checked > 0 and split_checked > 0


def test_an_input_no_split_dim_moves_is_priced_once() -> None:
    """resnet18's stride-2 1x1 downsample at 64 KiB: tilings that split only rows and columns keep the whole weight;
    it was priced once per tile of every loop but the innermost (1,408 bytes where the tiles move 1,152)."""
    lowered = lower(load_graph(models.build("resnet18"), dtype="bf16"))
    machine = load_machine("edge-npu", scratchpad="64KiB")
    capacity = machine.scratchpad.partition_bytes
    (stmt,) = [s for s in lowered.statements if s.node == "layer2.0.downsample.0"]
    weight = next(t for t in stmt.tensors_read if lowered.graph.tensors[t].kind == "constant")
    unmoved = 0
    for price, sizes, order in op_choices(lowered, stmt, machine, capacity):
        tiles = [(block, *tile_boxes(stmt, block)) for block in blocks(stmt, dict(sizes), _full_order(stmt, order))]
        moved = _loaded(stmt, tiles, lowered.graph.elem_bytes, frozenset()) + sum(
            box.numel * lowered.graph.elem_bytes(t) for _, _, writes in tiles for t, box in writes.items())
        assert price == moved, (sizes, order)
        unmoved += len(order) >= 2 and all(reads[weight] == tiles[0][1][weight] for _, reads, _ in tiles)
    assert unmoved > 0  # the case the test is about: two split dims, neither moving the weight
