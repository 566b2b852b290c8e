"""Quantities with units, as written in machine files: sizes, frequencies, bandwidths, times and counts.

A value is a number and a unit, with or without a space between them: "24 MiB", "64KiB", "1.4 GHz", "410 GB/s",
"400 ns". A bare number is in the base unit: bytes, Hz, bytes per cycle or cycles. Numbers are parsed exactly (as
fractions) and rounded once at the end, so "400 ns" at 1.4 GHz is exactly 560 cycles.

Each parser raises `UnitError` with a one-line message that names neither file nor key: the caller knows them.
The `format_*` functions write a value back in a form the parsers read to the identical value.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

SIZE_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "KB": 10**3, "kB": 10**3, "MB": 10**6, "GB": 10**9}
FREQUENCY_UNITS = {"Hz": 1, "kHz": 10**3, "MHz": 10**6, "GHz": 10**9}
SECOND_UNITS = {"s": Fraction(1), "ms": Fraction(1, 10**3), "us": Fraction(1, 10**6), "µs": Fraction(1, 10**6),
                "ns": Fraction(1, 10**9)}
CYCLE_UNITS = ("cycles", "cycle")
PER_CYCLE_UNITS = ("B/cycle",)
PER_SECOND_UNITS = {f"{unit}/s": scale for unit, scale in SIZE_UNITS.items()}

_HINTS = {"size": "use B, KiB, MiB, GiB, KB, MB or GB", "frequency": "use Hz, kHz, MHz or GHz",
          "bandwidth": "use GB/s or B/cycle", "time": "use cycles, ns, us, ms or s"}
# A number (exponents up to 999, so that parsing stays cheap) and a unit made of letters and slashes.
_NUMBER = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?)\s*([A-Za-zµ][A-Za-zµ/]*)?\s*")


class UnitError(ValueError):
    """A value that is not a well-formed quantity of the expected kind (the message names neither file nor key)."""


def _split(value: object, kind: str, example: str) -> tuple[Fraction, str]:
    """The exact number and the unit ("" when bare) of a value read from YAML: a string, an int or a float."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UnitError(f"expected a {kind} such as {example!r}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UnitError(f"malformed {kind} {value!r} (expected a finite number and a unit, e.g. {example!r})")
    if not isinstance(value, str):
        return Fraction(value), ""
    match = _NUMBER.fullmatch(value)
    if match is None:
        raise UnitError(f"malformed {kind} {value!r} (expected a number and a unit, e.g. {example!r})")
    return Fraction(match[1]), match[2] or ""


def _wrong_unit(unit: str, kind: str) -> UnitError:
    return UnitError(f"unit {unit!r} is not a {kind} ({_HINTS[kind]})")


def _float(number: Fraction, text: object) -> float:
    try:
        return float(number)
    except OverflowError:
        raise UnitError(f"{text!r} is too large") from None


def _whole(number: Fraction, text: object, what: str) -> int:
    if number.denominator != 1:
        raise UnitError(f"{text!r} is not a whole number of {what}")
    return int(number)


def parse_size(text: object) -> int:
    """Bytes in a size: binary units (KiB, MiB, GiB) are powers of 1024, decimal ones (KB, MB, GB) of 1000.

    >>> parse_size("24 MiB"), parse_size("64KiB"), parse_size("1.5 KB"), parse_size("1048576"), parse_size(512)
    (25165824, 65536, 1500, 1048576, 512)
    """
    number, unit = _split(text, "size", "24 MiB")
    if (unit or "B") not in SIZE_UNITS:
        raise _wrong_unit(unit, "size")
    return _whole(number * SIZE_UNITS[unit or "B"], text, "bytes")


def parse_frequency(text: object) -> float:
    """Hz in a frequency.

    >>> parse_frequency("1.4 GHz"), parse_frequency("700 MHz")
    (1400000000.0, 700000000.0)
    """
    number, unit = _split(text, "frequency", "1.4 GHz")
    if (unit or "Hz") not in FREQUENCY_UNITS:
        raise _wrong_unit(unit, "frequency")
    return _float(number * FREQUENCY_UNITS[unit or "Hz"], text)


def parse_bandwidth(text: object, clock_hz: float) -> float:
    """Bytes per cycle of `clock_hz` in a bandwidth given per second ("410 GB/s") or per cycle ("16 B/cycle").

    >>> parse_bandwidth("410 GB/s", 1.4e9) == 410e9 / 1.4e9, parse_bandwidth("16 B/cycle", 1e9)
    (True, 16.0)
    """
    number, unit = _split(text, "bandwidth", "410 GB/s")
    if unit in PER_SECOND_UNITS:
        return _float(number * PER_SECOND_UNITS[unit] / Fraction(clock_hz), text)
    if unit in ("", *PER_CYCLE_UNITS):
        return _float(number, text)
    raise _wrong_unit(unit, "bandwidth")


def parse_cycles(text: object, clock_hz: float) -> int:
    """Cycles of `clock_hz` in a time given in cycles or seconds; a fraction of a cycle costs a whole one (ceiling).

    >>> parse_cycles("400 ns", 1.4e9), parse_cycles("500 cycles", 1e9), parse_cycles("1 ns", 1.4e9)
    (560, 500, 2)
    """
    number, unit = _split(text, "time", "500 cycles")
    if unit in SECOND_UNITS:
        return math.ceil(number * SECOND_UNITS[unit] * Fraction(clock_hz))
    if unit in ("", *CYCLE_UNITS):
        return _whole(number, text, "cycles")
    raise _wrong_unit(unit, "time")


def parse_count(value: object) -> int:
    """A plain whole number, without a unit (engines, partitions, rows, MACs per cycle).

    >>> parse_count(16), parse_count("128")
    (16, 128)
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise UnitError(f"expected a whole number, got {value!r}")


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def format_size(size_bytes: int) -> str:
    """A size in the largest binary unit that holds it exactly.

    >>> format_size(25165824), format_size(1536)
    ('24 MiB', '1536 B')
    """
    for unit in ("GiB", "MiB", "KiB"):
        if size_bytes and size_bytes % SIZE_UNITS[unit] == 0:
            return f"{size_bytes // SIZE_UNITS[unit]} {unit}"
    return f"{size_bytes} B"


def format_frequency(hz: float) -> str:
    """A frequency in the largest unit that reads back to exactly `hz`.

    >>> format_frequency(1.4e9), format_frequency(7e8), format_frequency(1234.5)
    ('1.4 GHz', '700 MHz', '1.2345 kHz')
    """
    for unit in ("GHz", "MHz", "kHz"):
        text = f"{_plain(hz / FREQUENCY_UNITS[unit])} {unit}"
        if abs(hz) >= FREQUENCY_UNITS[unit] and parse_frequency(text) == hz:
            return text
    return f"{_plain(hz)} Hz"


def format_bandwidth(bytes_per_cycle: float) -> str:
    """A bandwidth in bytes per cycle, exact whatever the clock.

    >>> format_bandwidth(16.0), format_bandwidth(410e9 / 1.4e9)
    ('16 B/cycle', '292.85714285714283 B/cycle')
    """
    return f"{_plain(bytes_per_cycle)} B/cycle"


def format_cycles(cycles: int) -> str:
    """A time in cycles.

    >>> format_cycles(560)
    '560 cycles'
    """
    return f"{cycles} cycles"
