"""One buffer slot per operand: under the default objective per-op staging takes a single-buffered tiling when it
moves fewer DRAM bytes than double buffering or a split reduction, and the best unfused bound prices exactly the
buffers staging can emit (issue 10 item 6, issue 13 item 2)."""

from __future__ import annotations

import onnx
import yaml

from planner.baseline import plan_baseline
from planner.best_unfused import op_bound
from planner.fused import plan_fused
from planner.staging.builder import ProgramBuilder
from planner.staging.op_tilings import choose_tiling
from planner.testing import Case
from simulator.machine_file import machine_from_dict
from simulator.timing import simulate
from tests.regressions.test_found_by_fusion_cases import CONV_CHAIN_MACHINE, CONV_CHAIN_MODEL


def _case() -> tuple[Case, object]:
    return Case.of(onnx.parser.parse_model(CONV_CHAIN_MODEL)), machine_from_dict(yaml.safe_load(CONV_CHAIN_MACHINE))


def test_the_tight_conv_takes_one_slot_under_traffic_and_two_under_latency() -> None:
    case, machine = _case()
    builder = ProgramBuilder(case.lowered, machine, "test")
    conv = case.lowered.statements[0]
    capacity = machine.scratchpad.partition_bytes
    traffic = choose_tiling(builder, conv, frozenset(), capacity)
    latency = choose_tiling(builder, conv, frozenset(), capacity, "latency")
    assert not traffic.split and traffic.slots == 1
    assert latency.split or latency.slots == 2


def test_the_staged_op_moves_what_its_bound_says() -> None:
    # conv_3 alone: one slot, whole reduction, moves 27,700 bytes (the split moved 47,400, double buffering
    # 100,192); the bound is that tiling's price, and the simulated baseline op moves exactly that
    case, machine = _case()
    conv = case.lowered.statements[0]
    bound = op_bound(case.lowered, conv, machine)
    stats = simulate(plan_baseline(case.lowered, machine), machine).stats
    moved = stats.ops[conv.node].dram_bytes_read + stats.ops[conv.node].dram_bytes_written
    assert bound.dram_bytes == moved == 27_700


def test_latency_keeps_the_double_buffered_plan() -> None:
    case, machine = _case()
    traffic = simulate(plan_fused(case.lowered, machine), machine).stats
    latency = simulate(plan_fused(case.lowered, machine, "latency"), machine).stats
    assert traffic.dram_bytes_read + traffic.dram_bytes_written < latency.dram_bytes_read + latency.dram_bytes_written
