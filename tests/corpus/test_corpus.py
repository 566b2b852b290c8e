"""Real exports import with the right MAC total, and their fused plans pass `--check` on edge-npu.

The files are what torch.onnx (both exporters), onnxruntime's quantizer and the onnx package's model zoo wrote, made by
`benchmarks/corpus.py`: the small set checked in under `tests/data/exports/` always runs; a whole corpus runs too when
`SCRATCHPLAN_CORPUS=DIR` names one (`python benchmarks/corpus.py build --out DIR`, needs the `[corpus]` extra).

Each file's manifest gives its MAC total as torch counted it (FlopCounterMode FLOPs / 2), or onnx shape inference for
zoo files; ours must be within `MAC_TOLERANCE` of it (see there why). A file that fails today because the planner lacks
an op or a pass is a strict xfail naming the message, so it flips to a failure the day it is fixed.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from pathlib import Path
from typing import Any

import pytest

from planner import api
from planner.bounds import bounds
from planner.errors import PlanError
from planner.fused import plan_fused
from planner.graph import load_graph
from planner.inspect import totals
from planner.ops import lower
from planner.stmt import LoweredGraph
from simulator.machine_file import load_machine
from simulator.timing import simulate

CHECKED_IN = Path(__file__).resolve().parent.parent / "data" / "exports"
# Our MAC total may differ from the manifest's by this fraction. FlopCounterMode counts every aten convolution and
# matmul as exactly 2 x its MACs and the exported graph holds the same ones, so on every file so far the totals are
# equal; 1% only leaves room for an exporter that folds a tiny weight-only product (rotary frequencies) into a constant.
MAC_TOLERANCE = 0.01
SCRATCHPADS = ("512KiB", "64KiB")

# file -> a part of today's failure message, for a file that fails for want of an op or a pass. None today: all 61
# files of the corpus that `benchmarks/corpus.py build` makes import with their MAC total (branch corpus, 11f4b5c;
# `python benchmarks/corpus.py report /work/corpus --import-only`).
KNOWN_IMPORT_FAILURES: dict[str, str] = {}
# file -> why its fused plan fails --check at some scratchpad although it imports.
KNOWN_PLAN_FAILURES: dict[tuple[str, str], str] = {}


def corpus_files() -> list[Path]:
    files = sorted(CHECKED_IN.glob("*.onnx"))
    if os.environ.get("SCRATCHPLAN_CORPUS"):
        files += sorted(Path(os.environ["SCRATCHPLAN_CORPUS"]).glob("*.onnx"))
    return files


def _param(path: Path, *extra: str) -> Any:
    where = "data" if path.parent == CHECKED_IN else "corpus"
    reason = KNOWN_IMPORT_FAILURES.get(path.name)
    if extra and reason is None:
        reason = KNOWN_PLAN_FAILURES.get((path.name, extra[0]))
    # raises=PlanError: a crash, or a known file failing with another message (an AssertionError), is a real failure
    marks = [pytest.mark.xfail(strict=True, raises=PlanError, reason=reason)] if reason else []
    if extra and manifest(path)["macs"] > 100_000_000:  # a full-size zoo file: its --check takes many minutes
        marks += [pytest.mark.slow, pytest.mark.skipif(not os.environ.get("SCRATCHPLAN_CORPUS"),
                                                       reason="full-size file: planned only with SCRATCHPLAN_CORPUS")]
    return pytest.param(path, *extra, id="-".join([where, path.name, *extra]), marks=marks)


def manifest(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.with_suffix(".json").read_text()))


def input_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """--input-shape for the inputs exported with dynamic axes, as a user would give it."""
    entry = manifest(path)
    return {name: tuple(entry["inputs"][name]) for name in entry.get("dynamic_axes", {})}


@functools.lru_cache(maxsize=4)
def imported(path: Path) -> LoweredGraph:
    return lower(load_graph(str(path), input_shapes=input_shapes(path)))


@pytest.mark.parametrize("path", [_param(p) for p in corpus_files()])
def test_imports_with_the_right_mac_total(path: Path) -> None:
    expected = KNOWN_IMPORT_FAILURES.get(path.name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            lowered = imported(path)
        except PlanError as exc:
            if expected is not None:  # the known failure, word for word: anything else is a new finding
                assert expected in str(exc), f"failed differently than known: {exc}"
            raise
    assert not [str(w.message) for w in caught], "import printed warnings (bad input must be one line on stderr)"
    ours, theirs = totals(lowered).macs, manifest(path)["macs"]
    assert abs(ours - theirs) <= MAC_TOLERANCE * theirs, f"MACs: ours {ours:,}, manifest {theirs:,}"


@pytest.mark.parametrize(("path", "scratchpad"), [_param(p, s) for p in corpus_files() for s in SCRATCHPADS])
def test_fused_plan_passes_check_on_edge_npu(path: Path, scratchpad: str) -> None:
    lowered = imported(path)
    machine = load_machine("edge-npu", scratchpad=scratchpad)
    program = plan_fused(lowered, machine)
    limits = bounds(lowered, machine)
    stats = simulate(program, machine).stats
    assert stats.dram_bytes_read + stats.dram_bytes_written >= limits.compulsory_bytes, "traffic below its bound"
    api.check(api.load(str(path), input_shapes=input_shapes(path)), program, machine)


def test_checked_in_files_cover_each_exporter_style() -> None:
    """Both torch exporters, both onnxruntime quantizers and a zoo file, under 3 MB in all."""
    entries = [manifest(p) for p in sorted(CHECKED_IN.glob("*.onnx"))]
    styles = {e["exporter"] for e in entries}
    assert {"torchscript", "torch.export", "onnx-caffe2"} <= styles
    assert any("quantize_static" in s for s in styles) and any("quantize_dynamic" in s for s in styles)
    assert {e["opset"] for e in entries} >= {9, 17, 18}
    assert sum(p.stat().st_size for p in CHECKED_IN.iterdir()) < 3_000_000
