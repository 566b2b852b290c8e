"""Found by the zoo measurement (benchmarks/zoo_table.py): the search's best schedule for MobileNetV2 did not stage.

On the 16 KiB-per-partition edge NPU, `planner.working_set` reserved a recomputing group's room as the sum of
one tile's buffers and the next one's inputs, but staging interleaves two tiles and places them first fit: both
tiles' intermediates live at once, with holes between them. The residency kept tensors right above the estimate, the
allocator found no room for the group's buffers, and the fused strategy fell back to a schedule priced far higher
(full-size MobileNetV2: 46.1 MB instead of 28.3 MB). The search now checks that the allocator places the group's
buffers, staged alone with its resident tensors pinned beside it, within the partition
(`planner.staging.room.staged_room`). At 96x96 the best schedule failed the same way (its group of statements 7..14).
"""

from __future__ import annotations

import pytest

from models import build
from planner import api
from planner.fused import dram_bytes, stage
from planner.schedule.search import search
from planner.staging.room import staged_room


def test_the_best_mobilenet_v2_schedule_stages_at_its_price() -> None:
    loaded, machine = api.load(build("mobilenet_v2", image_size=96), dtype="bf16"), api.machine("edge-npu")
    ranked = search(loaded.lowered, machine)
    for schedule, _ in ranked[:3]:
        for unit in schedule.groups:
            group, residency = unit.group, schedule.residency
            kept = [k for k in residency.kept if k.first <= group.last and group.first <= k.last]
            assert staged_room(loaded.lowered, machine, group, kept) <= machine.scratchpad.partition_bytes
    best, price = ranked[0]
    assert dram_bytes(stage(loaded.lowered, machine, best)) == price.dram_bytes


@pytest.mark.slow
def test_resnet50_at_batch_8_keeps_every_group_boundary_on_inferentia2() -> None:
    """Reserving each group's staged room alone (2339ff1) left no room to keep the block outputs between resnet50's
    groups at batch 8 (60,067,280 bytes, 1.12x compulsory); the working set reserved, with the groups' buffers
    placed around the kept tensors, keeps them all."""
    report = api.evaluate("resnet50", "inferentia2-core", batch=8, dtype="bf16", best_unfused=False)
    assert report.dram_bytes == report.compulsory_bytes
