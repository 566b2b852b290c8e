"""Hypothesis profiles, registered by tests/conftest.py: `ci` (the default) keeps the suite within minutes on 2 cores;
`thorough` is for bug hunts (`pytest --hypothesis-profile=thorough`)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.internal.conjecture import providers
from hypothesis.internal.constants_ast import Constants


def _no_local_constants() -> Constants:
    return Constants()


# Hypothesis (>= 6.131) sometimes draws a constant found in the source of the project's modules loaded so far
# (`sys.modules`). Which are loaded depends on the tests run before in the same process (and on which files were
# collected), so `derandomize` drew other examples in the whole suite than in one file: test_refusals planned 11 of
# 30 examples there, 17 alone, and under load took minutes. Without that pool, every process draws the same examples
# (tests/test_determinism.py).
providers._get_local_constants = _no_local_constants

settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def ci_examples(count: int) -> int:
    """`count` examples under `ci`, for a property whose examples cost a second or more apiece; the loaded profile's
    own count under any other. Called at import, after the pytest plugin has loaded `--hypothesis-profile`.

    >>> ci_examples(25) if settings.get_current_profile_name() == "ci" else 25
    25
    """
    return count if settings.get_current_profile_name() == "ci" else settings().max_examples
