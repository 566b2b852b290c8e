"""The machine file format: YAML presets and user files to `MachineConfig`, and back.

The YAML schema, in the style of ZigZag and Timeloop hardware files: one section per component, every key required
except `name` (default: the file's stem) and the four marked optional, no other key allowed. Values carry their
units (see `simulator.units`); a bare number is in the base unit (bytes, Hz, B/cycle, cycles). Units: sizes in B,
KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000); frequencies in Hz, kHz, MHz, GHz; bandwidths in
B/cycle or a size per second (GB/s, GiB/s); times in cycles or s, ms, us, ns. Rates per second and times in seconds
are converted with `clock`; a time is rounded up to whole cycles. A key given twice is an error, as is any key not
below.

    name: edge-npu
    clock: 1 GHz                  # frequency: the one clock every cycle below counts
    scratchpad:
      capacity: 512 KiB           # size, at least one byte per partition
      partitions: 32              # count; each holds capacity // partitions bytes, the remainder is unused
      alignment: 32 B             # size, a power of two: every buffer offset is a multiple of it
    dram:
      bandwidth: 16 B/cycle       # bandwidth, per cycle or per second (410 GB/s); shared by every DMA engine
      latency: 200 ns             # time (or 200 cycles), paid once per transfer
    dma:
      engines: 2                  # count of queues
      outstanding: 4              # count of transfers in flight per queue
      burst: 64 B                 # size
      descriptor: 16 cycles       # time per descriptor
      engine_bandwidth: 16 B/cycle
      descriptor_dims: 3          # count; optional (1): one descriptor moves a strided box of up to this many dims
    tensor_engine:
      rows: 32                    # count
      cols: 32                    # count
      macs_per_cycle: {fp32: 256, bf16: 512, fp16: 512, int8: 1024}   # counts, for exactly these dtypes
      fill: 32 cycles             # time
      drain: 32 cycles            # time
      load: 32 cycles             # time; optional (0): per fold, the stationary operand in or out
      dataflow: ws                # optional (ws): ws (weight-stationary) or os (output-stationary)
      stationary_buffers: 1       # optional (1): 2 overlaps the next fold's load with this one's stream
    vector_engine:
      elements_per_cycle: 32      # count

Sizes, rates and counts must be positive; times may be zero (an ideal machine). A bad file raises `MachineError` with
one line naming the file and the dotted key, e.g. `edge.yaml: dram.bandwidth: unit 'GHz' is not a bandwidth (use GB/s
or B/cycle)`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from simulator import units
from simulator.machine import (
    DTYPES,
    DmaConfig,
    DramConfig,
    EnergyConfig,
    MachineConfig,
    MachineError,
    ScratchpadConfig,
    TensorEngineConfig,
    VectorEngineConfig,
    require_positive,
)
from simulator.units import UnitError

_PRESETS = resources.files("simulator") / "presets"
T = TypeVar("T")


def preset_names() -> tuple[str, ...]:
    """The machines shipped with the package, by name.

    >>> preset_names()
    ('edge-npu', 'inferentia2-core', 'tpu-v1-like')
    """
    return tuple(sorted(entry.name.removesuffix(".yaml") for entry in _PRESETS.iterdir()
                        if entry.name.endswith(".yaml")))


def load_machine(spec: str | os.PathLike[str], *, scratchpad: str | int | None = None) -> MachineConfig:
    """A preset by name (see `preset_names`) or a YAML file by path; `scratchpad` overrides its capacity.

    `scratchpad` is the CLI's `--scratchpad SIZE`: "64KiB", "24 MiB", "1048576" (bytes). The machine keeps its name.
    A preset name wins over a file of the same name (write `./edge-npu` for the file).

    >>> load_machine("edge-npu").tensor_engine.rows
    32
    >>> load_machine("inferentia2-core", scratchpad="64KiB").scratchpad.capacity_bytes
    65536
    """
    machine = _load_spec(spec)
    if scratchpad is None:
        return machine
    try:
        capacity_bytes = units.parse_size(scratchpad)
        return replace(machine, scratchpad=replace(machine.scratchpad, capacity_bytes=capacity_bytes))
    except (UnitError, MachineError) as error:
        raise MachineError(f"--scratchpad {scratchpad}: {error}") from None


def machine_from_dict(document: object, *, source: str = "<machine>", default_name: str = "machine") -> MachineConfig:
    """A machine from an already-parsed YAML document; errors start with `source`.

    >>> machine_from_dict({"clock": "1 GHz"}, source="m.yaml")
    Traceback (most recent call last):
    simulator.machine.MachineError: m.yaml: scratchpad: missing
    """
    try:
        return _build(document, default_name)
    except MachineError as error:
        raise MachineError(f"{source}: {error}") from None


def machine_to_yaml(machine: MachineConfig) -> str:
    """The machine as YAML text that `load_machine` reads back to an equal machine (sizes and rates with units).

    >>> machine_to_yaml(load_machine("edge-npu")).splitlines()[:4]
    ['name: edge-npu', 'clock: 1 GHz', 'scratchpad:', '  capacity: 512 KiB']
    """
    document: dict[str, Any] = {"name": machine.name, "clock": units.format_frequency(machine.clock_hz)}
    for section, (_, fields) in _SECTIONS.items():
        part = getattr(machine, section)
        document[section] = {key: _FORMATS[kind](getattr(part, attribute)) for key, (attribute, kind) in fields.items()}
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


# The file format, one table for reading and writing: each section's YAML keys, in order, with the dataclass field each
# fills and the kind of quantity it holds.
_SECTIONS: dict[str, tuple[Callable[..., object], dict[str, tuple[str, str]]]] = {
    "scratchpad": (ScratchpadConfig, {"capacity": ("capacity_bytes", "size"), "partitions": ("partitions", "count"),
                                      "alignment": ("alignment_bytes", "size")}),
    "dram": (DramConfig, {"bandwidth": ("bandwidth_bytes_per_cycle", "bandwidth"),
                          "latency": ("latency_cycles", "time")}),
    "dma": (DmaConfig, {"engines": ("engines", "count"), "outstanding": ("outstanding", "count"),
                        "burst": ("burst_bytes", "size"), "descriptor": ("descriptor_cycles", "time"),
                        "engine_bandwidth": ("engine_bandwidth_bytes_per_cycle", "bandwidth"),
                        "descriptor_dims": ("descriptor_dims", "count")}),
    "tensor_engine": (TensorEngineConfig, {"rows": ("rows", "count"), "cols": ("cols", "count"),
                                           "macs_per_cycle": ("macs_per_cycle", "count by dtype"),
                                           "fill": ("fill_cycles", "time"), "drain": ("drain_cycles", "time"),
                                           "load": ("load_cycles", "time"), "dataflow": ("dataflow", "choice"),
                                           "stationary_buffers": ("stationary_buffers", "count")}),
    "vector_engine": (VectorEngineConfig, {"elements_per_cycle": ("elements_per_cycle", "count")}),
    "energy": (EnergyConfig, {"mac": ("mac_pj", "energy by dtype"), "vector_op": ("vector_op_pj", "energy"),
                              "scratchpad_read": ("scratchpad_read_pj_per_byte", "energy"),
                              "scratchpad_write": ("scratchpad_write_pj_per_byte", "energy"),
                              "dram": ("dram_pj_per_byte", "energy"), "descriptor": ("descriptor_pj", "energy")}),
}
_FORMATS: dict[str, Callable[[Any], object]] = {
    "size": units.format_size, "count": int, "bandwidth": units.format_bandwidth, "time": units.format_cycles,
    "count by dtype": lambda macs: {dtype: int(macs[dtype]) for dtype in DTYPES}, "choice": str,
    "energy": lambda pj: f"{pj:g} pJ", "energy by dtype": lambda pj: {dtype: f"{pj[dtype]:g} pJ" for dtype in DTYPES},
}
# Sections a file may leave out (the dataclass defaults apply).
_OPTIONAL_SECTIONS = ("energy",)
# Keys a file may leave out, with the dataclass default (added after the first presets, so older files still load).
_OPTIONAL: dict[str, tuple[str, ...]] = {"tensor_engine": ("load", "dataflow", "stationary_buffers"),
                                         "dma": ("descriptor_dims",)}


class _Section:
    """One mapping of a machine file, holding exactly `keys` (less any `optional`); errors name the dotted key."""

    def __init__(self, value: object, path: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
        self.path = path
        if not isinstance(value, dict):
            raise MachineError(f"{path + ': ' if path else ''}expected a mapping with keys {', '.join(keys)}, "
                               f"got {'an empty document' if value is None else repr(value)[:60]}")
        for key in value:
            if key not in keys:
                close = difflib.get_close_matches(str(key), keys, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(keys)}"
                raise MachineError(f"{self.key(key)}: unknown key ({hint})")
        for key in keys:
            if key not in value and key not in optional:
                raise MachineError(f"{self.key(key)}: missing")
        self.values: dict[Any, Any] = value

    def key(self, key: object) -> str:
        return f"{self.path}.{key}" if self.path else str(key)

    def get(self, key: str, parse: Callable[[object], T]) -> T:
        try:
            return parse(self.values[key])
        except UnitError as error:
            raise MachineError(f"{self.key(key)}: {error}") from None


def _build(document: object, default_name: str) -> MachineConfig:
    top = _Section(document, "", ("name", "clock", *_SECTIONS), optional=("name", *_OPTIONAL_SECTIONS))
    name = top.values.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise MachineError(f"name: expected a non-empty string, got {name!r}")
    clock_hz = top.get("clock", units.parse_frequency)
    require_positive("", clock=clock_hz)  # before it converts any rate or time

    def by_dtype(value: object, path: str, parse: Callable[[object], Any] = units.parse_count) -> dict[str, Any]:
        macs = _Section(value, path, DTYPES)
        return {dtype: macs.get(dtype, parse) for dtype in DTYPES}

    parsers: dict[str, Callable[[object], Any]] = {
        "size": units.parse_size, "count": units.parse_count,
        "bandwidth": lambda value: units.parse_bandwidth(value, clock_hz),
        "time": lambda value: units.parse_cycles(value, clock_hz), "choice": _choice, "energy": _energy_pj,
    }
    parts: dict[str, Any] = {}
    for section_key, (make, fields) in _SECTIONS.items():
        if section_key in _OPTIONAL_SECTIONS and section_key not in top.values:
            continue
        section = _Section(top.values[section_key], section_key, tuple(fields), _OPTIONAL.get(section_key, ()))
        parts[section_key] = make(**{
            attribute: by_dtype(section.values[key], section.key(key)) if kind == "count by dtype"
            else by_dtype(section.values[key], section.key(key), _energy_pj) if kind == "energy by dtype"
            else section.get(key, parsers[kind]) for key, (attribute, kind) in fields.items()
            if key in section.values})
    return MachineConfig(name, clock_hz, **parts)


_ENERGY_UNITS = {"fj": 1e-3, "pj": 1.0, "nj": 1e3}


def _energy_pj(value: object) -> float:
    """An energy in pJ: a bare number, or a number with fJ, pJ or nJ ("0.3 pJ", "1.3 nJ")."""
    if isinstance(value, bool):
        raise UnitError(f"expected an energy such as '0.3 pJ', got {value!r}")
    if isinstance(value, (int, float)):
        number, scale = float(value), 1.0
    elif isinstance(value, str):
        text = value.strip()
        unit = text[-2:].lower() if text[-2:].lower() in _ENERGY_UNITS else ""
        try:
            number, scale = float(text[:len(text) - len(unit)]), _ENERGY_UNITS.get(unit, 1.0)
        except ValueError:
            raise UnitError(f"malformed energy {value!r} (use fJ, pJ or nJ)") from None
    else:
        raise UnitError(f"expected an energy such as '0.3 pJ', got {value!r}")
    if not number * scale < float("inf") or number != number:
        raise UnitError(f"malformed energy {value!r}")
    return number * scale


def _choice(value: object) -> str:
    if not isinstance(value, str):
        raise UnitError(f"expected a word, got {value!r}")
    return value


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that rejects a key given twice in one mapping, which PyYAML would silently resolve to the last."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[str] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key_node.value!r}",
                                                        key_node.start_mark)
            seen.add(key_node.value)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _load_spec(spec: str | os.PathLike[str]) -> MachineConfig:
    source, presets = os.fspath(spec), preset_names()
    if source in presets:
        text, default_name, source = (_PRESETS / f"{source}.yaml").read_text(encoding="utf-8"), source, f"{source}.yaml"
    else:
        path = Path(source)
        if not path.is_file():
            raise MachineError(f"unknown machine {source!r}: not a preset ({', '.join(presets)}) and not a file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise MachineError(f"{source}: cannot read: {error}") from None
        default_name = path.stem
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise MachineError(f"{source}: not valid YAML: {problem}{where}") from None
    return machine_from_dict(document, source=source, default_name=default_name)
