"""Kernels at old opsets: a split reduction's partial Gemm runs without its bias even where the model's opset
requires one (Gemm made C optional at opset 11)."""

from __future__ import annotations

import numpy as np

from simulator.kernels import run_op


def test_partial_gemm_without_bias_runs_at_opset_9() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal((4, 5)).astype(np.float32)
    got = run_op("Gemm", (("transB", 1), ("alpha", 0.5)), 9, [a, b, None], 0, (3, 4), "float32")
    np.testing.assert_allclose(got, 0.5 * a @ b.T, rtol=1e-6)
