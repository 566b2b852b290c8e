"""planner.api: round trips, the accepted kinds of model and machine, and the CLI printing the API's figures."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import onnx
import pytest

import models
from planner import api
from planner.cli import main
from planner.errors import PlanError
from simulator.machine_file import load_machine, machine_to_yaml
from simulator.plan_file import program_from_json, program_to_json


def test_every_kind_of_model_and_machine_gives_the_same_report(tmp_path: Path) -> None:
    proto = models.build("cnn", small=True)
    path = tmp_path / "cnn.onnx"
    onnx.save(proto, path)
    yaml_path = tmp_path / "npu.yaml"
    yaml_path.write_text(machine_to_yaml(load_machine("edge-npu")))
    reports = [api.evaluate(model, machine) for model in ("cnn-small", proto, str(path), path)
               for machine in ("edge-npu", load_machine("edge-npu"), str(yaml_path))]
    figures = {(r.cycles, r.dram_bytes_read, r.dram_bytes_written, r.compulsory_bytes, r.roofline_cycles)
               for r in reports}
    assert len(figures) == 1
    report = reports[0]
    assert report.compulsory_bytes <= report.dram_bytes and report.roofline_cycles <= report.cycles
    assert sum(op.dram_bytes_read + op.dram_bytes_written for op in report.ops) == report.dram_bytes


def test_plan_simulate_check_round_trip() -> None:
    model = api.load("resnet18-small")
    machine = api.machine("edge-npu", scratchpad="64KiB")
    program = api.plan(model, machine, strategy="fused")
    assert program_from_json(program_to_json(program)) == program
    result = api.simulate(program_from_json(program_to_json(program)), machine)
    assert result.stats.total_cycles == api.evaluate(model, machine).cycles
    api.check(model, program, machine)  # raises CheckFailed on a wrong number


def test_check_catches_a_broken_program() -> None:
    model = api.load("mlp-small")
    program = api.plan(model, "edge-npu", strategy="baseline")
    # every instruction but the stores: the outputs are never written
    kept = tuple(i for i in program.instructions if type(i).__name__ != "DmaStore")
    renumbered = {old.id: new for new, old in enumerate(kept)}
    instructions = tuple(dataclasses.replace(i, id=renumbered[i.id], deps=tuple(renumbered[d] for d in i.deps
                                                                                 if d in renumbered)) for i in kept)
    broken = dataclasses.replace(program, instructions=instructions)
    with pytest.raises(api.CheckFailed):
        api.check(model, broken, "edge-npu")


def test_bad_input_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="no-such-machine"):
        api.machine("no-such-machine")
    with pytest.raises(PlanError, match="strategy 'greedy'"):
        api.plan("mlp-small", "edge-npu", strategy="greedy")
    with pytest.raises(PlanError, match="objective 'speed'"):
        api.plan("mlp-small", "edge-npu", objective="speed")


def test_a_scratchpad_override_on_a_machine_config() -> None:
    machine = api.machine(load_machine("edge-npu"), scratchpad="128KiB")
    assert machine.scratchpad.capacity_bytes == 128 * 1024
    assert api.evaluate("cnn-small", "edge-npu", scratchpad="128KiB") == api.evaluate("cnn-small", machine)


@pytest.mark.parametrize("command", ["simulate", "compare"])
def test_the_cli_prints_the_api_figures(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "cnn-small", "--machine", "edge-npu", "--scratchpad", "64KiB", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    for strategy in ("baseline", "fused"):
        if command == "simulate" and strategy == "baseline":
            continue
        figures = printed if command == "simulate" else printed[strategy]
        expected = api.evaluate("cnn-small", "edge-npu", scratchpad="64KiB", strategy=strategy).to_dict()
        assert figures == expected


def test_a_plan_file_simulates_to_the_same_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.json"
    assert main(["plan", "cnn-small", "--machine", "edge-npu", "-o", str(plan)]) == 0
    capsys.readouterr()
    assert main(["simulate", str(plan), "--machine", "edge-npu", "--json"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    report = api.evaluate("cnn-small", "edge-npu")
    assert (from_file["total_cycles"], from_file["dram_bytes_read"], from_file["compulsory_bytes"]) == (
        report.cycles, report.dram_bytes_read, report.compulsory_bytes)


@pytest.mark.parametrize("command", ["simulate", "compare"])
def test_plots_are_real_pictures(command: str, tmp_path: Path) -> None:
    picture = tmp_path / "plot.png"
    assert main([command, "cnn-small", "--machine", "edge-npu", "--plot", str(picture)]) == 0
    data = picture.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_a_plot_with_an_unknown_suffix_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "cnn-small", "--machine", "edge-npu", "--plot", str(tmp_path / "plot.bmp")]) == 2
    assert "plot.bmp" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_variant_gets_the_same_best_unfused_bound_with_its_original_priced_before() -> None:
    from planner import best_unfused as search

    machine = api.machine("edge-npu", scratchpad="16KiB")
    original, variant = (api.load(models.build("cnn", small=True, channels=widths)) for widths in ((8, 16), (8, 12)))
    search._FOUND.clear()
    cold = search.best_unfused(variant.lowered, machine)
    search._FOUND.clear()
    search.best_unfused(original.lowered, machine)  # shares its first conv and pool with the variant
    warm = search.best_unfused(variant.lowered, machine)
    assert warm == cold
    assert len(search._FOUND) < len(original.lowered.statements) + len(variant.lowered.statements)
