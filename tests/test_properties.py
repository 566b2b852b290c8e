"""Random models on random machines: every strategy's plans keep every invariant (`planner.testing.invariants`).

Each property runs the loaded profile's example count: 50, derandomized, under `ci` (the default; 25 for the tight
scratchpads, whose examples take many tiles); 2000 under `pytest --hypothesis-profile=thorough`, which also keeps
failing examples in .hypothesis/ for the next run. A failure
prints the shrunk model as ONNX text and the machine as YAML.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from planner.errors import PlanError
from planner.fused import plan_fused
from planner.testing import (
    STRATEGIES,
    Case,
    Coverage,
    check_best_unfused,
    check_plan,
    explained,
    fusion_cases,
    machines,
    onnx_models,
    split_cases,
)
from simulator.machine import MachineConfig
from simulator.machine_file import machine_from_dict, machine_to_yaml
from simulator.timing import simulate
from tests.profiles import ci_examples

DTYPES = st.sampled_from([None, "bf16", "int8"])  # None plans floats at their own size (fp32)


def checked(model, machine: MachineConfig, strategy: str, dtype: str | None) -> None:
    program = check_plan(model, machine, strategy, dtype)
    event("planned" if program is not None else "refused: scratchpad too small")


@pytest.mark.parametrize("strategy", STRATEGIES)
@given(model=onnx_models(), machine=machines(), dtype=DTYPES)
def test_plans_keep_the_invariants(strategy: str, model, machine: MachineConfig, dtype: str | None) -> None:
    checked(model, machine, strategy, dtype)


@pytest.mark.parametrize("strategy", STRATEGIES)
@settings(max_examples=ci_examples(25))  # 0.3 s an example, twice those of the roomier property above
@given(model=onnx_models(), machine=machines(partition_bytes=st.integers(8, 1024)), dtype=DTYPES)
def test_tight_scratchpads_tile_or_refuse_clearly(strategy: str, model, machine: MachineConfig,
                                                  dtype: str | None) -> None:
    """A few bytes to 1 KiB per partition: many tiles per op, or the clear PlanError."""
    checked(model, machine, strategy, dtype)


@given(machines())
def test_machine_yaml_round_trips(machine: MachineConfig) -> None:
    """The YAML a failing example prints reads back to the very machine that failed."""
    assert machine_from_dict(yaml.safe_load(machine_to_yaml(machine)), default_name="other") == machine


FUSION_EXAMPLES = 10  # each plans, simulates and runs many tiles on real numbers: seconds apiece on 2 busy cores
SPLIT_EXAMPLES = 2  # and conv chains of up to 16 channels on scratchpads that split their reductions


def test_fusion_cases_reach_multi_tile_groups() -> None:
    """Conv chains on machines that force row tiles (and a few that force splits): the fused plans keep every
    invariant, at least half of them hold a fusion group of two or more tiles, and some hand rows on in line buffers
    and split a reduction.
    `pytest -s` prints the coverage."""
    coverage = Coverage()

    @settings(max_examples=FUSION_EXAMPLES)
    @given(fusion_cases())
    def fused_plans(case) -> None:
        model, machine = case
        coverage.add(check_plan(model, machine, "fused"))

    @settings(max_examples=SPLIT_EXAMPLES)
    @given(split_cases())
    def split_plans(case) -> None:
        model, machine = case
        coverage.add(check_plan(model, machine, "fused"))

    fused_plans()
    split_plans()
    print(f"\nfusion_cases: {coverage.report()}")
    assert coverage.share("multi_tile_group") >= 0.5, coverage.report()
    assert coverage.counts["line_buffer"] and coverage.counts["split"], coverage.report()


UNFUSED_EXAMPLES = 3  # each also searches every op's tilings for the bound


@settings(max_examples=ci_examples(UNFUSED_EXAMPLES), phases=[Phase.explicit, Phase.generate])  # known: no shrink
@given(fusion_cases())
def test_fused_moves_no_more_than_best_unfused(case) -> None:
    """Issue 10 item 6: fusion only ever saves traffic against each op at its own best tiling."""
    model, machine = case
    with explained(model, machine):  # the other invariants are test_fusion_cases_reach_multi_tile_groups's
        case_ = Case.of(model)
        try:
            program = plan_fused(case_.lowered, machine)
        except PlanError:
            return  # refusals are test_fusion_cases_reach_multi_tile_groups's to check
        check_best_unfused(simulate(program, machine).stats, case_, machine)
