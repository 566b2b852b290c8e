"""The README's examples run as written: the property test of a schedule, and the NAS loop (fewer iterations)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading):]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, f"no python block under {heading}"
    return match.group(1)


def test_the_property_test_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = _block_after("## Property-based tests of your schedules")
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert "coverage over" in capsys.readouterr().out


def test_the_nas_loop_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = _block_after("## Python API (`planner.api`)")
    assert "range(100)" in code
    exec(compile(code.replace("range(100)", "range(3)"), "README.md", "exec"), {"__name__": "readme"})
    assert "fastest: channels" in capsys.readouterr().out


@pytest.mark.parametrize("cache", [False, True])
def test_features_and_work_of_a_recomputing_or_caching_group(cache: bool) -> None:
    """A row-tiled conv -> relu -> conv group staged both ways: coverage sees its tiles, its recompute or its cache,
    and the work invariant accounts the recomputed halo apart instead of failing on it."""
    from planner.testing import Case, check_program, features
    from tests.planner.test_groups import MACHINES, chain, row_group, stage

    lowered, model = chain()
    machine = MACHINES[sorted(MACHINES)[0]]()
    program = stage(lowered, machine, row_group(cache))
    found = features(program)
    assert found.multi_tile_groups == 1
    assert (found.recomputed_elements > 0) is not cache
    assert (found.cached_intermediates == 2) is cache
    check_program(program, machine, Case.of(model))
