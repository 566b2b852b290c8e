"""Shared fixtures: a tiny helper that saves a model under tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from hypothesis import settings

from tests import profiles  # noqa: F401  (registers the profiles)


@pytest.fixture
def save_model(tmp_path: Path) -> Callable[..., Path]:
    """`save_model(model, "m.onnx")` writes the model unchecked (bad models included) and returns its path."""

    def save(model: onnx.ModelProto, name: str = "model.onnx") -> Path:
        path = tmp_path / name
        path.write_bytes(model.SerializeToString())
        return path

    return save


settings.load_profile("ci")  # the default; `pytest --hypothesis-profile=thorough` loads the other
