"""Runs repeat: the same model plans to the same plan file in any process, and the property tests draw the same examples
whatever ran before them.

Each case runs in fresh subprocesses, since what varies between runs is process-wide: the hash seed of str and bytes
(`PYTHONHASHSEED`, which orders sets of names), and the modules loaded so far (Hypothesis draws constants from the
source of the project's loaded modules unless tests/profiles.py turns that off).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PLAN = """
import hashlib, sys
from dataclasses import replace
import models
from planner.graph import load_graph
from planner.ops import lower
from planner.testing import STRATEGIES
from simulator.machine_file import load_machine
from simulator.plan_file import program_to_json
machine = load_machine("edge-npu")
machine = replace(machine, scratchpad=replace(machine.scratchpad, capacity_bytes=16 * 1024))  # fusion groups tile
for name in sys.argv[1:]:
    for strategy in ("baseline", "fused"):
        program = STRATEGIES[strategy](lower(load_graph(models.build(name, small=True))), machine)
        print(name, strategy, hashlib.sha256(program_to_json(program).encode()).hexdigest())
"""

DRAW = """
import hashlib, sys
from hypothesis import given, settings
from tests import profiles  # noqa: F401  (what the suite runs with)
if sys.argv[1] == "more":  # modules the suite loads before the property tests run: more source constants
    import models, planner.api, planner.cli, planner.inspect, planner.qdq, planner.sweep, simulator.trace  # noqa: F401
from planner.testing import machines, onnx_models
found = []
@settings(max_examples=40, derandomize=True, database=None, deadline=None)
@given(model=onnx_models(), machine=machines())
def draw(model, machine):
    found.append(hashlib.sha256(model.SerializeToString() + repr(machine).encode()).hexdigest()[:12])
draw()
print(" ".join(found))
"""


def run(script: str, *args: str, hash_seed: str = "0") -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("names", [("cnn", "mlp")])
def test_plans_do_not_depend_on_the_hash_seed(names: tuple[str, ...]) -> None:
    first, second = run(PLAN, *names, hash_seed="0"), run(PLAN, *names, hash_seed="12345")
    assert first.count("\n") == 2 * len(names)
    assert first == second


def test_examples_do_not_depend_on_the_modules_loaded() -> None:
    alone, after_more = run(DRAW, "few", hash_seed="1"), run(DRAW, "more", hash_seed="2")
    assert len(alone.split()) == 40
    assert alone == after_more
