"""Shared fixtures: a tiny helper that saves a model under tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from hypothesis import HealthCheck, settings


@pytest.fixture
def save_model(tmp_path: Path) -> Callable[..., Path]:
    """`save_model(model, "m.onnx")` writes the model unchecked (bad models included) and returns its path."""

    def save(model: onnx.ModelProto, name: str = "model.onnx") -> Path:
        path = tmp_path / name
        path.write_bytes(model.SerializeToString())
        return path

    return save


# Hypothesis profiles: `ci` (the default) keeps the suite within minutes on 2 cores; `thorough` is for bug hunts:
#   pytest --hypothesis-profile=thorough
settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.load_profile("ci")
