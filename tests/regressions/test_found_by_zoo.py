"""Found by the zoo measurement (benchmarks/zoo_table.py): the search's best schedule for MobileNetV2 did not stage.

On the 16 KiB-per-partition edge NPU, `planner.working_set` reserved a recomputing group's room as the sum of
one tile's buffers and the next one's inputs, but staging interleaves two tiles and places them first fit: both
tiles' intermediates live at once, with holes between them. The residency kept tensors right above the estimate, the
allocator found no room for the group's buffers, and the fused strategy fell back to a schedule priced far higher
(full-size MobileNetV2: 46.1 MB instead of 28.3 MB). The search now reserves, and checks against the room the
residency leaves, the room the allocator takes for the group staged alone with its resident tensors
(`planner.staging.room.staged_room`). At 96x96 the best schedule failed the same way (its group of statements 7..14).
"""

from __future__ import annotations

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
            assert staged_room(loaded.lowered, machine, group, kept) <= min(residency.room[group.first:group.last + 1])
    best, price = ranked[0]
    assert dram_bytes(stage(loaded.lowered, machine, best)) == price.dram_bytes
