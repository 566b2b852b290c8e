"""Machine descriptions: the presets' documented figures, `--scratchpad` overrides, the YAML round trip, and one clear
line naming the file and key for every kind of bad machine file."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from simulator import machine as machine_module
from simulator import units
from simulator.machine import (
    DTYPES,
    DmaConfig,
    DramConfig,
    MachineConfig,
    MachineError,
    ScratchpadConfig,
    TensorEngineConfig,
    VectorEngineConfig,
)
from simulator.machine_file import load_machine, machine_from_dict, machine_to_yaml, preset_names

PRESET_DIR = Path(machine_module.__file__).parent / "presets"
KiB, MiB, GiB = 2**10, 2**20, 2**30


def expect_error(spec: str | Path, start: str, **overrides: Any) -> str:
    """Loading `spec` fails with one line that starts with `start` (the file, then the dotted key)."""
    with pytest.raises(MachineError) as info:
        load_machine(spec, **overrides)
    message = str(info.value)
    assert "\n" not in message and message.startswith(start), message
    return message


# ---- presets -----------------------------------------------------------------------------------------------------

def test_presets_are_listed() -> None:
    assert preset_names() == ("edge-npu", "inferentia2-core", "tpu-v1-like")


def test_inferentia2_core_is_one_neuroncore_v2() -> None:
    m = load_machine("inferentia2-core")
    assert m.name == "inferentia2-core" and m.clock_hz == 2.8e9  # TensorE's clock: one MAC per PE per cycle
    assert (m.scratchpad.capacity_bytes, m.scratchpad.partitions) == (24 * MiB, 128)
    assert m.scratchpad.partition_bytes == 192 * KiB
    assert (m.tensor_engine.rows, m.tensor_engine.cols) == (128, 128)
    assert dict(m.tensor_engine.macs_per_cycle) == {"fp32": 128 * 128 // 4, "bf16": 128 * 128, "fp16": 128 * 128,
                                                    "int8": 2 * 128 * 128}
    bf16_tflops = 2 * m.tensor_engine.macs_per_cycle["bf16"] * m.clock_hz / 1e12
    assert bf16_tflops == pytest.approx(92, rel=0.01)  # the NKI architecture guide's figure
    assert m.dram.bandwidth_bytes_per_cycle == pytest.approx(410e9 / m.clock_hz)  # half of the chip's 820 GB/s
    assert m.dram.latency_cycles == 1400  # 500 ns
    assert (m.dma.engines, m.dma.outstanding, m.dma.burst_bytes, m.dma.descriptor_cycles) == (16, 1, 64, 70)
    assert m.dma.engine_bandwidth_bytes_per_cycle == pytest.approx(27 * GiB / m.clock_hz)
    assert m.vector_engine.elements_per_cycle == 51  # 128 lanes at 1.12 GHz


def test_edge_npu() -> None:
    m = load_machine("edge-npu")
    assert (m.clock_hz, m.scratchpad.capacity_bytes, m.scratchpad.partitions) == (1e9, 512 * KiB, 32)
    assert (m.tensor_engine.rows, m.tensor_engine.cols, m.tensor_engine.macs_per_cycle["int8"]) == (32, 32, 1024)
    assert m.dram.bandwidth_bytes_per_cycle == 16 and m.dma.engines == 2


def test_tpu_v1_like() -> None:
    m = load_machine("tpu-v1-like")
    assert (m.clock_hz, m.scratchpad.capacity_bytes, m.scratchpad.partitions) == (700e6, 24 * MiB, 256)
    assert (m.tensor_engine.rows, m.tensor_engine.cols, m.tensor_engine.macs_per_cycle["int8"]) == (256, 256, 65536)
    assert 2 * 65536 * m.clock_hz / 1e12 == pytest.approx(92, rel=0.01)  # Jouppi et al.: 92 TOPS
    assert m.dram.bandwidth_bytes_per_cycle == pytest.approx(34e9 / 700e6)
    assert all(m.tensor_engine.macs_per_cycle[dtype] < 65536 for dtype in ("fp32", "bf16", "fp16"))


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_field_cites_its_source(name: str) -> None:
    for line in (PRESET_DIR / f"{name}.yaml").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.split("#")[0].strip() and not line.lstrip().startswith("#"):
            assert "#" in value or key.strip() in ("name", "cols"), f"{name}.yaml: {line.strip()!r} has no source"


# ---- --scratchpad ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "capacity_bytes"), [
    ("64KiB", 64 * KiB), ("64 KiB", 64 * KiB), ("65536", 64 * KiB), (65536, 64 * KiB), ("0.0625 MiB", 64 * KiB),
    ("512 KiB", 512 * KiB), ("24MiB", 24 * MiB), ("1 GiB", GiB), ("100 KB", 100_000), ("2 MB", 2_000_000),
    ("1048576", MiB), ("  4096 B ", 4096),
])
@pytest.mark.parametrize("name", preset_names())
def test_scratchpad_override(name: str, size: str | int, capacity_bytes: int) -> None:
    base = load_machine(name)
    m = load_machine(name, scratchpad=size)
    assert m.scratchpad.capacity_bytes == capacity_bytes
    assert m.scratchpad.partition_bytes == capacity_bytes // base.scratchpad.partitions  # floor: remainder unused
    assert m == MachineConfig(base.name, base.clock_hz, ScratchpadConfig(capacity_bytes, base.scratchpad.partitions,
                              base.scratchpad.alignment_bytes), base.dram, base.dma, base.tensor_engine,
                              base.vector_engine)


def test_scratchpad_override_on_a_file(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(machine_to_yaml(load_machine("edge-npu")))
    assert load_machine(path, scratchpad="64KiB").scratchpad.capacity_bytes == 64 * KiB


@pytest.mark.parametrize(("size", "start"), [
    ("24 GHz", "--scratchpad 24 GHz: unit 'GHz' is not a size (use B, KiB"),
    ("64 kib", "--scratchpad 64 kib: unit 'kib' is not a size"),
    ("lots", "--scratchpad lots: malformed size 'lots'"),
    ("1.5 B", "--scratchpad 1.5 B: '1.5 B' is not a whole number of bytes"),
    ("0", "--scratchpad 0: scratchpad.capacity: must be positive"),
    ("-1 MiB", "--scratchpad -1 MiB: scratchpad.capacity: must be positive"),
    ("100 B", "--scratchpad 100 B: scratchpad.capacity: 100 B cannot give each of 128 partitions a byte"),
])
def test_bad_scratchpad_override(size: str, start: str) -> None:
    expect_error("inferentia2-core", start, scratchpad=size)


# ---- round trip --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", preset_names())
def test_preset_round_trip(name: str, tmp_path: Path) -> None:
    original = load_machine(name)
    path = tmp_path / "copy.yaml"
    path.write_text(machine_to_yaml(original))
    assert load_machine(path) == original


@st.composite
def machines(draw: st.DrawFn) -> MachineConfig:
    """Any valid machine, with awkward clocks, fractional rates and sizes that are not whole units."""
    count = st.integers(1, 4096)
    rate = st.floats(1e-3, 1e4, allow_nan=False, allow_infinity=False)
    cycles = st.integers(0, 10**6)
    partitions = draw(count)
    return MachineConfig(
        draw(st.text(min_size=1, max_size=12).filter(str.strip)), draw(st.floats(1e3, 1e11)),
        ScratchpadConfig(draw(st.integers(partitions, 2**34)), partitions, 2 ** draw(st.integers(0, 12))),
        DramConfig(draw(rate), draw(cycles)),
        DmaConfig(draw(count), draw(count), draw(st.integers(1, 2**20)), draw(cycles), draw(rate)),
        TensorEngineConfig(draw(count), draw(count), {dtype: draw(st.integers(1, 2**20)) for dtype in DTYPES},
                           draw(cycles), draw(cycles)),
        VectorEngineConfig(draw(count)))


@given(machines())
def test_round_trip(machine: MachineConfig) -> None:
    text = machine_to_yaml(machine)
    assert machine_from_dict(yaml.safe_load(text)) == machine, text


# ---- bad machine files -------------------------------------------------------------------------------------------

def edge_document() -> dict[str, Any]:
    return yaml.safe_load((PRESET_DIR / "edge-npu.yaml").read_text())  # type: ignore[no-any-return]


def set_key(document: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for parent in parents:
        document = document[parent]
    if value is DELETE:
        del document[last]
    else:
        document[last] = value


DELETE = object()


@pytest.mark.parametrize(("key", "value", "start"), [
    # unknown and missing keys
    ("dram.bandwith", "16 B/cycle", "edge.yaml: dram.bandwith: unknown key (did you mean 'bandwidth'?)"),
    ("colour", "blue", "edge.yaml: colour: unknown key (expected one of name, clock, scratchpad"),
    ("tensor_engine.macs_per_cycle.fp64", 1, "edge.yaml: tensor_engine.macs_per_cycle.fp64: unknown key"),
    ("dma.burst", DELETE, "edge.yaml: dma.burst: missing"),
    ("vector_engine", DELETE, "edge.yaml: vector_engine: missing"),
    ("clock", DELETE, "edge.yaml: clock: missing"),
    ("tensor_engine.macs_per_cycle.int8", DELETE, "edge.yaml: tensor_engine.macs_per_cycle.int8: missing"),
    ("dram", "fast", "edge.yaml: dram: expected a mapping with keys bandwidth, latency, got 'fast'"),
    ("tensor_engine.macs_per_cycle", 1024, "edge.yaml: tensor_engine.macs_per_cycle: expected a mapping"),
    # wrong units
    ("dram.bandwidth", "16 GHz",
     "edge.yaml: dram.bandwidth: unit 'GHz' is not a bandwidth (use GB/s or B/cycle)"),
    ("scratchpad.capacity", "24 GHz", "edge.yaml: scratchpad.capacity: unit 'GHz' is not a size"),
    ("clock", "1 GB", "edge.yaml: clock: unit 'GB' is not a frequency (use Hz, kHz, MHz or GHz)"),
    ("dram.latency", "5 MiB", "edge.yaml: dram.latency: unit 'MiB' is not a time"),
    ("dma.descriptor", "16 GB/s", "edge.yaml: dma.descriptor: unit 'GB/s' is not a time"),
    ("dma.engine_bandwidth", "16 B", "edge.yaml: dma.engine_bandwidth: unit 'B' is not a bandwidth"),
    # malformed numbers
    ("scratchpad.capacity", "24.5.1 MiB", "edge.yaml: scratchpad.capacity: malformed size '24.5.1 MiB'"),
    ("clock", "fast", "edge.yaml: clock: malformed frequency 'fast'"),
    ("dram.bandwidth", "", "edge.yaml: dram.bandwidth: malformed bandwidth ''"),
    ("scratchpad.capacity", None, "edge.yaml: scratchpad.capacity: expected a size such as '24 MiB', got None"),
    ("scratchpad.capacity", [1, 2], "edge.yaml: scratchpad.capacity: expected a size"),
    ("dram.bandwidth", float("nan"), "edge.yaml: dram.bandwidth: malformed bandwidth nan"),
    ("clock", "1e9999 Hz", "edge.yaml: clock: malformed frequency"),
    ("dram.bandwidth", "1e309 B/cycle", "edge.yaml: dram.bandwidth: '1e309 B/cycle' is too large"),
    ("dma.engines", 1.5, "edge.yaml: dma.engines: expected a whole number, got 1.5"),
    ("dma.engines", True, "edge.yaml: dma.engines: expected a whole number, got True"),
    ("tensor_engine.rows", "32 rows", "edge.yaml: tensor_engine.rows: expected a whole number, got '32 rows'"),
    ("dma.burst", "1.5 B", "edge.yaml: dma.burst: '1.5 B' is not a whole number of bytes"),
    ("tensor_engine.fill", "2.5 cycles", "edge.yaml: tensor_engine.fill: '2.5 cycles' is not a whole number"),
    ("name", 5, "edge.yaml: name: expected a non-empty string, got 5"),
    # non-positive sizes, rates and counts; negative times
    ("scratchpad.capacity", "0 B", "edge.yaml: scratchpad.capacity: must be positive, got 0"),
    ("scratchpad.capacity", "-1 MiB", "edge.yaml: scratchpad.capacity: must be positive"),
    ("scratchpad.partitions", 0, "edge.yaml: scratchpad.partitions: must be positive, got 0"),
    ("dram.bandwidth", "0 GB/s", "edge.yaml: dram.bandwidth: must be positive"),
    ("clock", "0 Hz", "edge.yaml: clock: must be positive"),
    ("dma.engines", -1, "edge.yaml: dma.engines: must be positive, got -1"),
    ("tensor_engine.macs_per_cycle.int8", 0, "edge.yaml: tensor_engine.macs_per_cycle.int8: must be positive"),
    ("vector_engine.elements_per_cycle", 0, "edge.yaml: vector_engine.elements_per_cycle: must be positive"),
    ("dram.latency", "-5 cycles", "edge.yaml: dram.latency: must not be negative, got -5"),
    ("tensor_engine.dataflow", "is", "edge.yaml: tensor_engine.dataflow: 'is' is not one of ws, os"),
    ("tensor_engine.dataflow", 3, "edge.yaml: tensor_engine.dataflow: expected a word, got 3"),
    ("tensor_engine.stationary_buffers", 3, "edge.yaml: tensor_engine.stationary_buffers: must be 1 or 2, got 3"),
    ("energy.dram", "5 GB", "edge.yaml: energy.dram: malformed energy '5 GB' (use fJ, pJ or nJ)"),
    ("energy.mac.int8", "-1 pJ", "edge.yaml: energy.mac.int8: must not be negative, got -1.0"),
    ("dma.descriptor_dims", 0, "edge.yaml: dma.descriptor_dims: must be positive, got 0"),
    ("tensor_engine.load", "-1 cycles", "edge.yaml: tensor_engine.load: must not be negative, got -1"),
    # constraints between fields
    ("scratchpad.alignment", "48 B", "edge.yaml: scratchpad.alignment: 48 B is not a power of two"),
    ("scratchpad.capacity", "16 B", "edge.yaml: scratchpad.capacity: 16 B cannot give each of 32 partitions a byte"),
])
def test_bad_key(key: str, value: Any, start: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    document = edge_document()
    set_key(document, key, value)
    monkeypatch.chdir(tmp_path)
    Path("edge.yaml").write_text(yaml.safe_dump(document))
    expect_error("edge.yaml", start)


@pytest.mark.parametrize(("text", "start"), [
    ("clock: [1 GHz\n", "edge.yaml: not valid YAML: "),
    ("clock: 1 GHz\n  scratchpad: 3\n", "edge.yaml: not valid YAML: "),
    ("- 1\n- 2\n", "edge.yaml: expected a mapping with keys name, clock, scratchpad, dram, dma, tensor_engine, "
                   "vector_engine, energy, got [1, 2]"),
    ("", "edge.yaml: expected a mapping with keys name, clock"),
    ("just words\n", "edge.yaml: expected a mapping with keys name, clock"),
    ("clock: 1 GHz\nclock: 2 GHz\n", "edge.yaml: not valid YAML: duplicate key 'clock' at line 2"),
    ("!!python/object:os.system {}\n", "edge.yaml: not valid YAML: "),
])
def test_bad_file(text: str, start: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("edge.yaml").write_text(text)
    expect_error("edge.yaml", start)


def test_duplicate_key_in_a_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = (PRESET_DIR / "edge-npu.yaml").read_text().replace("dram:\n", "dram:\n  bandwidth: 1 B/cycle\n")
    Path("edge.yaml").write_text(text)
    expect_error("edge.yaml", "edge.yaml: not valid YAML: duplicate key 'bandwidth' at line")


def test_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    document = edge_document()
    del document["name"]
    (tmp_path / "my-npu.yaml").write_text(yaml.safe_dump(document))
    assert load_machine(tmp_path / "my-npu.yaml").name == "my-npu"


def test_unknown_preset_or_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    presets = "(edge-npu, inferentia2-core, tpu-v1-like)"
    expect_error("edge-npx", f"unknown machine 'edge-npx': not a preset {presets} and not a file")
    expect_error("missing.yaml", f"unknown machine 'missing.yaml': not a preset {presets}")
    expect_error(tmp_path, f"unknown machine '{tmp_path}': not a preset")  # a directory
    monkeypatch.chdir(tmp_path)
    Path("binary.yaml").write_bytes(b"\xff\xfe\x00clock")
    expect_error("binary.yaml", "binary.yaml: cannot read: ")


def test_machines_built_in_code_are_checked_too() -> None:
    with pytest.raises(MachineError, match=r"^scratchpad.alignment: 3 B is not a power of two$"):
        ScratchpadConfig(1024, 4, 3)
    with pytest.raises(MachineError, match=r"^tensor_engine.macs_per_cycle: needs exactly fp32, bf16, fp16, int8"):
        TensorEngineConfig(4, 4, {"fp32": 1}, 0, 0)
    with pytest.raises(MachineError, match=r"^dma.outstanding: must be positive, got 0$"):
        DmaConfig(1, 0, 64, 0, 1.0)


# ---- units and module hygiene ------------------------------------------------------------------------------------

def test_units_are_exact() -> None:
    assert units.parse_cycles("400 ns", 1.4e9) == 560  # not 561 from 400e-9 * 1.4e9 in floats
    assert units.parse_bandwidth("410 GB/s", 1.4e9) == 410e9 / 1.4e9
    assert units.parse_bandwidth("27 GiB/s", 2.8e9) == 27 * GiB / 2.8e9
    assert units.parse_cycles("0.1 ns", 1e9) == 1  # a fraction of a cycle costs a whole one


@pytest.mark.parametrize("module", [units, machine_module])
def test_docstring_examples(module: Any) -> None:
    assert doctest.testmod(module).failed == 0


def test_simulator_does_not_import_planner() -> None:
    code = "import sys, simulator.machine; sys.exit(any(m.split('.')[0] == 'planner' for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_systolic_keys_are_optional_with_the_old_behaviour(tmp_path: Path) -> None:
    document = edge_document()
    for key in ("load", "dataflow", "stationary_buffers"):
        del document["tensor_engine"][key]
    del document["dma"]["descriptor_dims"]
    del document["energy"]
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(document))
    engine = load_machine(tmp_path / "old.yaml").tensor_engine
    assert (engine.load_cycles, engine.dataflow, engine.stationary_buffers) == (0, "ws", 1)
    assert load_machine(tmp_path / "old.yaml").dma.descriptor_dims == 1
    assert load_machine("edge-npu").dma.descriptor_dims == 3
    assert load_machine(tmp_path / "old.yaml").energy.dram_pj_per_byte == 162.5  # Horowitz's, the default
    assert load_machine("tpu-v1-like").tensor_engine.stationary_buffers == 2
