"""DRAM bandwidth as a fluid: the transfers moving data share it max-min fairly, each capped by its queue's rate.

Shares change only when a transfer starts or stops moving data, so the timing loop asks for the next finish and
touches only the active transfers.
"""

from __future__ import annotations

import math
from typing import Any

from simulator.machine import MachineConfig

# slack of float time when deciding that fluid transfers have finished
EPS_ABS, EPS_REL = 1e-9, 1e-12


class Bandwidth:
    """The fluid model: the transfers moving data, their remaining bytes, and their current rates.

    The arithmetic is fixed (the same float operations in the same order, so timings are reproducible bit for bit):
    `advance` takes `rate * elapsed` off every transfer, and a transfer's finish is `remaining / rate` from now.
    """

    def __init__(self, machine: MachineConfig) -> None:
        self.dram_rate = float(machine.dram.bandwidth_bytes_per_cycle)
        self.engine_rate = float(machine.dma.engine_bandwidth_bytes_per_cycle)
        self.moving: dict[int, list[Any]] = {}   # id -> [remaining bytes, bytes per cycle, queue], in start order
        self.per_queue = [0] * machine.dma.engines
        self.now = 0.0
        self.next_finish = math.inf
        self.soonest = -1  # the transfer that finishes at next_finish
        # with one transfer moving, it gets min(engine, DRAM) (what the water-filling gives for one)
        self.alone_rate = min(self.engine_rate / 1, self.dram_rate / 1)

    def advance(self, now: float) -> None:
        elapsed = now - self.now
        if elapsed > 0:
            for transfer in self.moving.values():
                transfer[0] -= transfer[1] * elapsed
        self.now = now

    def add(self, instruction: int, moved_bytes: int, queue: int) -> None:
        self.moving[instruction] = [float(moved_bytes), 0.0, queue]
        self.per_queue[queue] += 1
        self._share()

    def pop_finished(self) -> list[int]:
        """Advance to the next finish and remove every transfer done by then."""
        self.advance(self.next_finish)
        slack = EPS_ABS + EPS_REL * self.now
        moving, soonest = self.moving, self.soonest
        done = [i for i, (remaining, rate, _) in moving.items() if i == soonest or remaining <= rate * slack]
        per_queue = self.per_queue
        for i in done:
            per_queue[moving.pop(i)[2]] -= 1
        self._share()
        return done

    def _share(self) -> None:
        # max-min fair water-filling; a transfer's cap is its queue's rate split among the queue's moving transfers,
        # so transfers with the smallest cap (the busiest queue) are served first
        moving = self.moving
        if len(moving) == 1:
            for i, transfer in moving.items():
                transfer[1] = rate = self.alone_rate
                self.soonest = i
                self.next_finish = self.now + transfer[0] / rate
            return
        per_queue = self.per_queue
        counts = [(count, queue) for queue, count in enumerate(per_queue) if count]
        if len(counts) > 1:
            counts.sort(reverse=True)
        budget, left = self.dram_rate, len(moving)
        engine_rate = self.engine_rate
        rates = [0.0] * len(per_queue)
        for count, queue in counts:
            rate = min(engine_rate / count, budget / left)
            rates[queue] = rate
            budget -= rate * count
            left -= count
        soonest, self.soonest = math.inf, -1
        for i, transfer in moving.items():
            transfer[1] = rate = rates[transfer[2]]
            finish = transfer[0] / rate
            if finish < soonest:
                soonest, self.soonest = finish, i
        self.next_finish = self.now + soonest
