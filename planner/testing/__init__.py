"""Property-based tests of schedules: hypothesis strategies for ONNX models and machines, and the invariant checkers
the project's own tests use.

- `onnx_models()`: random valid ONNX graphs of the supported ops; `conv_chains()`: conv chains at batch 1 with
  enough rows that fusion groups tile them.
- `machines()`: random machines; `fusion_cases()`: (model, machine) pairs whose scratchpad forces row tiling of
  fusion groups; `split_cases()`: the same with scratchpads that force conv splits.
- `check_plan(model, machine, strategy=...)`: plan and assert every invariant; `check_program(program, machine,
  model)`: the same invariants for a program from anywhere (your own scheduler's plan file);
  `check_best_unfused(stats, case, machine)`: a fused plan moves no more than the best unfused bound.
- `Coverage`: what the examples reached (multi-tile groups, recompute, cache, residency, line buffers, splits).

See the README section "Property-based tests of your schedules" for a complete example.
"""

from planner.testing.coverage import Coverage, Features, features
from planner.testing.graphs import conv_chains, fusion_cases, onnx_models, split_cases
from planner.testing.invariants import (
    STRATEGIES,
    Case,
    check_best_unfused,
    check_plan,
    check_program,
    describe,
    explained,
)
from planner.testing.machines import machines

__all__ = ["STRATEGIES", "Case", "Coverage", "Features", "check_best_unfused", "check_plan",
           "check_program", "conv_chains", "describe",
           "explained", "features", "fusion_cases", "machines", "onnx_models", "split_cases"]
