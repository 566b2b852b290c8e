"""The planner's choice of DRAM layouts: intermediates only, never slower DMA than ONNX's layout, and programs that
use them still compute what onnxruntime does."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from planner import api
from planner.staging.layout import dma_cycles
from simulator.dma import program_totals
from simulator.isa import DmaLoad, DmaStore, Program
from simulator.machine import MachineConfig


def _tight(capacity_kib: int) -> MachineConfig:
    machine = api.machine("edge-npu")
    return dataclasses.replace(machine, scratchpad=dataclasses.replace(machine.scratchpad,
                                                                       capacity_bytes=capacity_kib * 1024))


def _onnx(program: Program) -> Program:
    return dataclasses.replace(program, tensors=tuple(dataclasses.replace(t, layout=None) for t in program.tensors))


@pytest.mark.parametrize(("model", "strategy", "capacity_kib"), [("cnn-small", "baseline", 16),
                                                                 ("cnn-small", "fused", 24),
                                                                 ("resnet18-small", "baseline", 512)])
def test_chosen_layouts_pass_the_check_and_move_in_fewer_runs(model: str, strategy: str,
                                                                     capacity_kib: int) -> None:
    machine = _tight(capacity_kib)
    program = api.plan(model, machine, strategy=strategy)
    laid_out = [t for t in program.tensors if t.layout is not None]
    assert laid_out, "this case is here because the planner picks a non-ONNX layout for it"
    assert all(t.role == "intermediate" for t in laid_out)  # inputs, outputs and weights keep ONNX's
    api.check(model, program, machine)  # verify, then the functional run against onnxruntime
    before, after = program_totals(_onnx(program), machine), program_totals(program, machine)
    assert after.runs < before.runs and after.descriptors <= before.descriptors
    assert after.burst_bytes <= before.burst_bytes and after.payload_bytes == before.payload_bytes
    for tensor in laid_out:  # each choice is at least as fast as ONNX's layout for its own boxes
        counted = Counter(i.box for i in program.instructions
                          if isinstance(i, DmaLoad | DmaStore) and i.tensor == tensor.name)
        assert dma_cycles(tensor, counted, machine) <= dma_cycles(dataclasses.replace(tensor, layout=None), counted,
                                                                  machine)
