"""The verifier's second half: one walk over the instructions in program order, asking happens-before questions.

Program order says what each read means: the data the last write before it in program order put there. Happens-
before (`simulator.hb`) says whether the hardware is forced to do it that way. The walk keeps an abstract scratchpad
(`simulator.residency`): per buffer, disjoint segments, each a region of the buffer holding a box of one tensor, with
its writer and its readers since; per byte range, the buffer lifetime that last took it. Then:

- a read must find exactly its tensor box in the segments (`not-resident`), written by instructions that
  happen-before it (`missing-dep`);
- a write must come after the reads of what it overwrites, and after differing writes there (`write-hazard`);
- a Release must come after every read and write of its buffer since the last Release (`early-release`); it empties
  the buffer and ends its lifetime;
- a buffer's lifetime starts at its first write; if the bytes it takes belong to a lifetime that has no Release yet,
  or whose Release does not happen-before each write of the new lifetime, the two are live at once (`overlap`).
  Per byte, lifetimes form a chain in program order, so checking each against the one before it orders them all;
- DRAM: a load of an output or intermediate box must be covered by stores that happen-before it
  (`dram-not-ready`), and every model output must be covered by the stores (`output-not-stored`).
"""

from __future__ import annotations

from collections import defaultdict

from simulator.hb import HappensBefore
from simulator.isa import Box, Compute, DmaGather, DmaLoad, DmaStore, DramTensor, Instruction, Program, Release
from simulator.machine import MachineConfig
from simulator.regions import Region, RegionIndex, describe, shifted, subtract, uncovered, volume
from simulator.residency import AddressMap, Contents, Lifetime, Segment, Users
from simulator.violations import Kind, Violation, label
from simulator.wellformed import Wellformed


def check_dataflow(program: Program, machine: MachineConfig, wellformed: Wellformed) -> list[Violation]:
    """Walk a program whose ids and deps are sound (`wellformed.ordered`), leaving out `wellformed.skipped`."""
    walk = _Walk(program, machine, wellformed)
    for instruction in program.instructions:
        if instruction.id not in wellformed.skipped:
            walk.step(instruction)
    for name in program.outputs:
        if name in wellformed.tensors:
            walk.check_output(wellformed.tensors[name])
    return walk.violations


def _region(at: tuple[int, ...], box: Box) -> Region:
    return at, tuple(a + n for a, n in zip(at, box.shape, strict=True))


def _shift(at: tuple[int, ...], box: Box) -> tuple[int, ...]:
    return tuple(s - a for s, a in zip(box.start, at, strict=True))


def _reads(reader: Instruction, tensor: str, box: Box, buffer: str, at: tuple[int, ...]) -> str:
    return f"{label(reader)} reads {describe(tensor, (box.start, box.stop))} from buffer {buffer} at {list(at)}"


def _writes(writer: Instruction, tensor: str, box: Box, buffer: str, at: tuple[int, ...], segment: Segment,
            common: Region) -> str:
    return (f"{label(writer)} writes {describe(tensor, (box.start, box.stop))} into buffer {buffer} at {list(at)} "
            f"over {describe(segment.tensor, shifted(common, segment.shift))}")


class _Walk:
    def __init__(self, program: Program, machine: MachineConfig, wellformed: Wellformed) -> None:
        self.instructions = program.instructions
        self.partitions = machine.scratchpad.partitions
        self.tensors, self.buffers = wellformed.tensors, wellformed.buffers
        self.hb = HappensBefore(program.instructions)
        self.violations: list[Violation] = []
        self.contents = {name: Contents(buffer.shape) for name, buffer in self.buffers.items()}
        self.users: dict[str, Users] = defaultdict(Users)  # of each buffer, since its last Release
        self.lifetimes: dict[str, Lifetime] = {}            # the live one of each buffer
        self.guards: dict[str, list[Lifetime]] = {}         # released lifetimes whose bytes a live one took
        self.last_release: dict[str, int] = {}
        self.addresses = AddressMap()
        # DRAM: each tensor's stores so far, indexed by box, and the same by exact box.
        self.stores = {name: RegionIndex[int, int](tensor.shape) for name, tensor in self.tensors.items()}
        self.stored_boxes: dict[str, dict[Region, list[int]]] = defaultdict(dict)

    def report(self, instruction: int | None, kind: Kind, message: str) -> None:
        self.violations.append(Violation(instruction, kind, message))

    def name(self, instruction: int) -> str:
        return label(self.instructions[instruction])

    def step(self, instruction: Instruction) -> None:
        if isinstance(instruction, Compute):
            for operand in instruction.operands:
                self.read(instruction, operand.tensor, operand.box, operand.buffer, operand.at)
            output = instruction.output
            self.write(instruction, output.tensor, output.box, output.buffer, output.at)
        elif isinstance(instruction, DmaLoad):
            self.load_from_dram(instruction)
            self.write(instruction, instruction.tensor, instruction.box, instruction.buffer, instruction.at)
        elif isinstance(instruction, DmaGather):
            indices = instruction.indices
            self.read(instruction, indices.tensor, indices.box, indices.buffer, indices.at)
            self.dram_ready(instruction, instruction.table, instruction.window)
            output = instruction.output
            self.write(instruction, output.tensor, output.box, output.buffer, output.at)
        elif isinstance(instruction, DmaStore):
            self.read(instruction, instruction.tensor, instruction.box, instruction.buffer, instruction.at)
            self.store_to_dram(instruction)
        else:
            self.release(instruction)

    def read(self, reader: Instruction, tensor: str, box: Box, buffer: str, at: tuple[int, ...]) -> None:
        region, shift = _region(at, box), _shift(at, box)
        engine = reader.engine if isinstance(reader, Compute) else None
        found: list[Region] = []
        wrong = False
        unordered: set[int] = set()
        for segment, common in self.contents[buffer].overlapping(region):
            if not segment.holds(tensor, shift):
                if not wrong:
                    held = describe(segment.tensor, shifted(common, segment.shift))
                    self.report(reader.id, "not-resident", f"{_reads(reader, tensor, box, buffer, at)}, but that "
                                f"place holds {held} (from {self.name(segment.writer)})")
                wrong = True
                continue
            found.append(common)
            if segment.writer not in unordered and not self.hb.before(segment.writer, reader.id):
                unordered.add(segment.writer)
                self.report(reader.id, "missing-dep", f"{_reads(reader, tensor, box, buffer, at)}, written there "
                            f"by {self.name(segment.writer)}, which does not happen-before it")
            segment.readers.add(reader.id, engine)
        missing = [] if found == [region] else uncovered(region, found)
        if missing and not wrong:
            released = self.last_release.get(buffer)
            why = (f"the buffer was last released by release {released}" if released is not None
                   else "nothing was loaded or computed there")
            self.report(reader.id, "not-resident", f"{_reads(reader, tensor, box, buffer, at)}, but "
                        f"{describe(tensor, shifted(missing[0], shift))} is not there ({why})")
        self.users[buffer].add(reader.id, engine)

    def write(self, writer: Instruction, tensor: str, box: Box, buffer: str, at: tuple[int, ...]) -> None:
        region, shift = _region(at, box), _shift(at, box)
        self.check_lifetime(writer, buffer)
        contents = self.contents[buffer]
        reported: set[int] = set()
        for segment, common in contents.overlapping(region):
            for reader in segment.readers.ids():
                if reader != writer.id and reader not in reported and not self.hb.before(reader, writer.id):
                    reported.add(reader)
                    over = _writes(writer, tensor, box, buffer, at, segment, common)
                    self.report(writer.id, "write-hazard", f"{over}, which {self.name(reader)} reads and does not "
                                "happen-before it (WAR)")
            if not segment.holds(tensor, shift) and not self.hb.before(segment.writer, writer.id):
                over = _writes(writer, tensor, box, buffer, at, segment, common)
                self.report(writer.id, "write-hazard", f"{over}, written by {self.name(segment.writer)}, which does "
                            "not happen-before it (WAW)")
            contents.remove(segment)
            for piece in subtract(segment.region, region):
                contents.add(Segment(piece, segment.tensor, segment.shift, segment.writer, segment.readers.copy()))
        contents.add(Segment(region, tensor, shift, writer.id))
        self.users[buffer].add(writer.id, writer.engine if isinstance(writer, Compute) else None)

    def check_lifetime(self, writer: Instruction, buffer: str) -> None:
        lifetime = self.lifetimes.get(buffer)
        if lifetime is None:
            lifetime = self.lifetimes[buffer] = Lifetime(buffer, writer.id)
            start, stop = self.byte_range(buffer)
            self.guards[buffer] = []
            for owner in self.addresses.take(start, stop, lifetime):
                if owner.release is None:
                    self.report(writer.id, "overlap", f"{label(writer)} writes buffer {buffer} ({self.span(buffer)}) "
                                f"while buffer {owner.buffer} ({self.span(owner.buffer)}), live since "
                                f"{self.name(owner.first_write)}, is not released")
                else:
                    self.guards[buffer].append(owner)
        guards = self.guards[buffer]
        for owner in list(guards):
            if owner.release is not None and not self.hb.before(owner.release, writer.id):
                guards.remove(owner)  # say it once per lifetime
                self.report(writer.id, "overlap", f"{label(writer)} writes buffer {buffer} ({self.span(buffer)}), "
                            f"but release {owner.release} of buffer {owner.buffer} ({self.span(owner.buffer)}) "
                            "does not happen-before it")

    def byte_range(self, buffer: str) -> tuple[int, int]:
        """The bytes [start, stop) the buffer takes in each partition it spans."""
        offset = self.buffers[buffer].offset
        return offset, offset + self.buffers[buffer].partition_bytes(self.partitions)

    def span(self, buffer: str) -> str:
        return "bytes [{}, {})".format(*self.byte_range(buffer))

    def release(self, release: Release) -> None:
        buffer = release.buffer
        for user in self.users[buffer].ids():
            if not self.hb.before(user, release.id):
                self.report(release.id, "early-release", f"{label(release)} of buffer {buffer} does not wait for "
                            f"{self.name(user)}, which uses it")
        self.contents[buffer] = Contents(self.buffers[buffer].shape)
        self.users[buffer] = Users()
        lifetime = self.lifetimes.pop(buffer, None)
        if lifetime is not None:
            lifetime.release = release.id
        self.last_release[buffer] = release.id

    def load_from_dram(self, load: DmaLoad) -> None:
        self.dram_ready(load, load.tensor, load.box)

    def dram_ready(self, load: DmaLoad | DmaGather, name: str, box: Box) -> None:
        tensor = self.tensors[name]
        if tensor.role not in ("output", "intermediate"):
            return
        wanted: Region = (box.start, box.stop)
        # Fast path: a store of exactly this box (the common case, a tile stored and loaded back whole).
        if any(self.hb.before(store, load.id) for store in self.stored_boxes[name].get(wanted, ())):
            return
        ready: list[Region] = []
        late: list[int] = []
        for store, common in self.stores[name].overlapping(wanted):
            if self.hb.before(store, load.id):
                ready.append(common)
            else:
                late.append(store)
        missing = uncovered(wanted, ready)
        if missing:
            hint = f"; {self.name(late[0])} writes part of it but does not happen-before the load" if late else ""
            self.report(load.id, "dram-not-ready", f"{label(load)} reads {describe(name, missing[0])} of "
                        f"{tensor.role} {name} from DRAM, but no store that happens-before it wrote that{hint}")

    def store_to_dram(self, store: DmaStore) -> None:
        region: Region = (store.box.start, store.box.stop)
        self.stores[store.tensor].add(store.id, region, store.id)
        self.stored_boxes[store.tensor].setdefault(region, []).append(store.id)

    def check_output(self, tensor: DramTensor) -> None:
        whole = Box.whole(tensor.shape)
        stored = self.stored_boxes[tensor.name]
        missing = uncovered((whole.start, whole.stop), sorted(stored))
        if missing:
            count = sum(volume(piece) for piece in missing)
            self.report(None, "output-not-stored", f"model output {tensor.name}: {count} of {whole.numel} elements "
                        f"are never stored, e.g. {describe(tensor.name, missing[0])}")
