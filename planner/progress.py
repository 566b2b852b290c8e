"""Progress on long plans: a bar on stderr when a person is watching (a terminal), nothing otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

Item = TypeVar("Item")


def progress(items: Iterable[Item], description: str, total: int | None = None) -> Iterator[Item]:
    """Iterate with a progress bar on stderr if it is a terminal (never in pipes, files or tests)."""
    yield from tqdm(items, desc=description, total=total, leave=False, unit="op", disable=not sys.stderr.isatty())
