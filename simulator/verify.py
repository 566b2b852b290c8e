"""Static legality of a Program on a machine: every read is of resident data that has landed, live buffers never
share bytes, every buffer fits, every model output is stored.

Two passes: `simulator.wellformed` checks each name, buffer, id and placement on its own; `simulator.dataflow` walks
the instructions in program order over an abstract scratchpad, asking `simulator.hb` whether the hardware is forced
to do what program order means. `simulator.violations` lists the kinds of violation.
"""

from __future__ import annotations

from simulator.dataflow import check_dataflow
from simulator.isa import Program
from simulator.machine import MachineConfig
from simulator.violations import Kind, Violation
from simulator.wellformed import check_wellformed

__all__ = ["Kind", "VerifyError", "Violation", "check", "verify"]


class VerifyError(ValueError):
    """An illegal program; the message is the first violation's, and `violations` holds them all."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__(violations[0].message)
        self.violations = violations


def verify(program: Program, machine: MachineConfig) -> list[Violation]:
    """Every violation of the program's legality on the machine; [] for a legal program.

    Faults of buffers and names come first, then each instruction's in program order (its own shape before its
    dataflow), then the model outputs left unstored. A store of a buffer nothing was loaded or computed into:

    >>> from simulator.isa import Box, Buffer, DmaStore, DramTensor, Program
    >>> from simulator.machine_file import load_machine
    >>> y = DramTensor("Y", (4,), "float32", 4, "output")
    >>> store = DmaStore(0, (), 0, "buf", (0,), "Y", Box((0,), (4,)))
    >>> program = Program("m", "by-hand", "edge-npu", (y,), (Buffer("buf", 0, (4,), (0,), 4),), (store,), ("Y",))
    >>> [violation] = verify(program, load_machine("edge-npu"))
    >>> print(violation.kind, violation.message)  # doctest: +NORMALIZE_WHITESPACE
    not-resident store 0 reads Y[0:4] from buffer buf at [0], but Y[0:4] is not there
    (nothing was loaded or computed there)
    """
    wellformed = check_wellformed(program, machine)
    if not wellformed.ordered:
        return wellformed.violations  # without sound deps there is no happens-before to ask about
    end = len(program.instructions)
    found = wellformed.violations + check_dataflow(program, machine, wellformed)

    def place(violation: Violation) -> int:
        if violation.instruction is not None:
            return violation.instruction
        return end if violation.kind == "output-not-stored" else -1

    return sorted(found, key=place)  # stable: within an instruction, shape before dataflow


def check(program: Program, machine: MachineConfig) -> None:
    """Raise VerifyError naming the first violation, if there is one."""
    violations = verify(program, machine)
    if violations:
        raise VerifyError(violations)
