"""The baseline on every zoo model's small variant: legal, numerically right, and between the bounds."""

from __future__ import annotations

import json

import pytest

import models
from planner.baseline import plan_baseline
from planner.bounds import bounds, program_bounds
from planner.check import reference_values
from planner.cli import main
from planner.errors import PlanError, SplitTooLarge, TileTooLarge
from planner.graph import load_graph
from planner.ops import lower
from simulator.functional import run_functional
from simulator.machine_file import load_machine
from simulator.plan_file import program_from_json, program_to_json
from simulator.timing import simulate
from simulator.verify import verify

MACHINES = [("edge-npu", "64KiB"), ("inferentia2-core", None)]


# On the roomy machine every op fits whole, as in resnet18 and vgg16; these two add only seconds of functional runs.
SLOW_ROOMY = {"resnet50", "mobilenet_v2"}


@pytest.mark.parametrize(("name", "machine_name", "scratchpad"), [
    pytest.param(name, machine, scratchpad,
                 marks=[pytest.mark.slow] if machine == "inferentia2-core" and name in SLOW_ROOMY else [])
    for name in sorted(models.ZOO) for machine, scratchpad in MACHINES])
def test_baseline_is_legal_and_matches_onnxruntime(name: str, machine_name: str, scratchpad: str | None) -> None:
    machine = load_machine(machine_name, scratchpad=scratchpad)
    model = models.build(name, small=True)
    graph = load_graph(model)
    lowered = lower(graph)
    program = plan_baseline(lowered, machine)
    assert verify(program, machine) == []
    dram, reference = reference_values(graph, model)
    run_functional(program, machine, dram, reference=reference)  # raises on the first tile that differs

    stats = simulate(program, machine).stats
    limits = bounds(lowered, machine)
    assert limits.compulsory_bytes <= stats.dram_bytes_read + stats.dram_bytes_written
    assert limits.roofline_cycles <= stats.total_cycles
    assert stats.peak_scratchpad_bytes <= machine.scratchpad.capacity_bytes
    assert program_bounds(program, machine) == limits
    assert program_from_json(program_to_json(program)) == program
    assert program_to_json(plan_baseline(lowered, machine)) == program_to_json(program)  # deterministic


def test_bf16_planning_halves_float_traffic() -> None:
    machine = load_machine("edge-npu", scratchpad="64KiB")
    model = models.build("cnn", small=True)
    fp32 = simulate(plan_baseline(lower(load_graph(model)), machine), machine).stats
    bf16 = simulate(plan_baseline(lower(load_graph(model, dtype="bf16")), machine), machine).stats
    assert bf16.dram_bytes_read * 2 == fp32.dram_bytes_read


def test_scratchpad_too_small_for_any_tile_names_the_op_and_bytes() -> None:
    machine = load_machine("edge-npu", scratchpad="1KiB")
    with pytest.raises(PlanError, match=r"op 'conv1' \(Conv\): .*needs [\d,]+ bytes per partition") as refused:
        plan_baseline(lower(load_graph(models.build("resnet18", small=True))), machine)
    assert isinstance(refused.value, (TileTooLarge, SplitTooLarge))
    assert refused.value.bytes_per_partition > refused.value.capacity_bytes == machine.scratchpad.partition_bytes


def test_cli_simulate_json_trace_and_plan_file(tmp_path, capsys) -> None:
    trace = tmp_path / "trace.json"
    assert main(["simulate", "cnn-small", "--machine", "edge-npu", "--scratchpad", "64KiB", "--json",
                 "--trace", str(trace), "--check"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"strategy", "machine", "total_cycles", "dram_bytes_read", "dram_bytes_written", "dma_transfers",
            "peak_scratchpad_bytes", "compulsory_bytes", "roofline_cycles", "ops"} <= set(report)
    assert {"name", "cycles", "compute_cycles", "dram_bytes_read", "dram_bytes_written", "dram_burst_bytes_read",
            "dram_burst_bytes_written"} == set(report["ops"][0])
    # burst-rounded bytes: at least the payload, and the ops add up to the totals
    for kind in ("read", "written"):
        assert report[f"dram_burst_bytes_{kind}"] >= report[f"dram_bytes_{kind}"]
        assert sum(op[f"dram_burst_bytes_{kind}"] for op in report["ops"]) == report[f"dram_burst_bytes_{kind}"]
    events = json.loads(trace.read_text())["traceEvents"]
    assert {e["args"]["name"] for e in events if e.get("name") == "thread_name"} >= {"tensor", "vector"}

    plan = tmp_path / "plan.json"
    assert main(["plan", "cnn-small", "--machine", "edge-npu", "--scratchpad", "64KiB", "-o", str(plan)]) == 0
    capsys.readouterr()
    assert main(["simulate", str(plan), "--machine", "edge-npu", "--scratchpad", "64KiB", "--json"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    # a plan file alone has no model to search tilings of: no best unfused figure
    assert from_file["best_unfused_bytes"] is None and report["best_unfused_bytes"] > 0
    same = {"model", "best_unfused_bytes"}
    assert {k: v for k, v in from_file.items() if k not in same} == {k: v for k, v in report.items() if k not in same}


@pytest.mark.parametrize(("argv", "fragment"), [
    (["simulate", "mlp-small", "--machine", "no-such-machine"], "no-such-machine"),
    (["simulate", "mlp-small", "--machine", "edge-npu", "--scratchpad", "12 GHz"], "--scratchpad"),
    (["simulate", "resnet18-small", "--machine", "edge-npu", "--scratchpad", "1KiB"], "conv1"),
    (["simulate", "missing-plan.json", "--machine", "edge-npu"], "missing-plan.json"),
])
def test_bad_simulate_input_is_one_line_and_status_2(argv, fragment, capsys) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and fragment in err and "Traceback" not in err


def test_broken_plan_file_is_refused(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 99}')
    assert main(["simulate", str(bad), "--machine", "edge-npu"]) == 2
    assert "schema_version" in capsys.readouterr().err


def test_check_failure_is_status_3(monkeypatch, capsys) -> None:
    import planner.commands as commands

    real = commands.STRATEGIES["baseline"]

    def drop_a_load(lowered, machine):  # a planner bug: the first load never happens
        program = real(lowered, machine)
        first = next(i for i in program.instructions if type(i).__name__ == "DmaLoad")
        kept = [i for i in program.instructions if i is not first]
        renumber = {old.id: new for new, old in enumerate(kept)}
        import dataclasses
        instructions = tuple(dataclasses.replace(i, id=renumber[i.id], deps=tuple(
            renumber[d] for d in i.deps if d in renumber)) for i in kept)
        return dataclasses.replace(program, instructions=instructions)

    monkeypatch.setitem(commands.STRATEGIES, "baseline", drop_a_load)
    assert main(["simulate", "mlp-small", "--machine", "edge-npu", "--strategy", "baseline", "--check"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("scratchplan: check failed: verify:") and err.count("\n") == 1
