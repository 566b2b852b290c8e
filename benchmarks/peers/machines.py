"""One machine, described three times: for scratchplan, for ZigZag and for SCALE-Sim.

The machine: a 32 x 32 array of int8 MACs (1024 per cycle), weight-stationary, one 256 KiB on-chip buffer, and a
DRAM port of 64 bits (8 B) per cycle. Each peer's file says it in that tool's own terms (read from the tools'
documented input formats; nothing copied):

- ours: a machine YAML (`simulator.machine_file`), with SCALE-Sim's per-fold costs (load R, fill R - 1, drain C - 1)
  and one stationary buffer, as SCALE-Sim models;
- ZigZag: a hardware YAML with sizes in bits: per-PE weight and output registers, the 256 KiB buffer shared by the
  three operands, and DRAM with one 64-bit read/write port; plus its mapping file (K over D1, C over D2);
- SCALE-Sim: a cfg of the same array with the 256 KiB split into ifmap / filter / ofmap SRAMs (it has no shared
  buffer) and CALC bandwidth mode (it computes the DRAM bandwidth that stalls nothing, so its cycles are compute
  cycles).
"""

from __future__ import annotations

from pathlib import Path

ROWS = COLS = 32
BUFFER_BYTES = 256 * 1024
DRAM_BITS_PER_CYCLE = 64

OURS = f"""\
# The side-by-side machine (benchmarks/peers): 32 x 32 int8 MACs, 256 KiB, 8 B/cycle of DRAM
name: peers-32x32
clock: 1 GHz
scratchpad:
  capacity: {BUFFER_BYTES // 1024} KiB
  partitions: 32
  alignment: 32 B
dram:
  bandwidth: {DRAM_BITS_PER_CYCLE // 8} B/cycle
  latency: 100 cycles
dma:
  engines: 2
  outstanding: 4
  burst: 64 B
  descriptor: 16 cycles
  engine_bandwidth: {DRAM_BITS_PER_CYCLE // 8} B/cycle
tensor_engine:
  rows: {ROWS}
  cols: {COLS}
  macs_per_cycle: {{fp32: 256, bf16: 512, fp16: 512, int8: {ROWS * COLS}}}
  fill: {ROWS - 1} cycles
  drain: {COLS - 1} cycles
  load: {ROWS} cycles
  dataflow: ws
  stationary_buffers: 1
vector_engine:
  elements_per_cycle: 32
"""


def _port(name: str, kind: str, bits: int, allocation: list[str]) -> str:
    lines = [f"      - name: {name}", f"        type: {kind}", f"        bandwidth_min: {bits}",
             f"        bandwidth_max: {bits}", "        allocation:"]
    return "\n".join(lines + [f"          - {a}" for a in allocation])


def zigzag_hardware() -> str:
    """ZigZag's accelerator YAML; energies are per access (pJ), from Horowitz (ISSCC 2014) scaled to int8."""
    def memory(name: str, size_bits: int, operands: str, ports: list[str], served: str, r_pj: float,
               w_pj: float) -> str:
        return "\n".join([f"  {name}:", f"    size: {size_bits}", f"    r_cost: {r_pj}", f"    w_cost: {w_pj}",
                          "    area: 0", "    latency: 1", f"    operands: [{operands}]", "    ports:", *ports,
                          f"    served_dimensions: [{served}]"])
    weight_reg = memory("weight_reg", 8, "I2", [_port("r_port_1", "read", 8, ["I2, tl"]),
                                                _port("w_port_1", "write", 8, ["I2, fh"])], "", 0.01, 0.01)
    output_reg = memory("output_reg", 32, "O", [_port("r_port_1", "read", 32, ["O, tl"]),
                                                _port("r_port_2", "read", 32, ["O, th"]),
                                                _port("w_port_1", "write", 32, ["O, fh"]),
                                                _port("w_port_2", "write", 32, ["O, fl"])], "", 0.02, 0.02)
    everything = ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"]
    buffer = memory("buffer", BUFFER_BYTES * 8, "I1, I2, O",
                    [_port("r_port_1", "read", 256, ["I1, tl", "I2, tl", "O, tl", "O, th"]),
                     _port("w_port_1", "write", 256, ["I1, fh", "I2, fh", "O, fh", "O, fl"])], "D1, D2", 20.0, 20.0)
    dram = memory("dram", 1 << 40, "I1, I2, O", [_port("rw_port_1", "read_write", DRAM_BITS_PER_CYCLE, everything)],
                  "D1, D2", 1280.0, 1280.0)
    return "\n".join(["name: peers_32x32", "", "memories:", weight_reg, output_reg, buffer, dram, "",
                      "operational_array:", "  unit_energy: 0.2", "  unit_area: 1", "  dimensions: [D1, D2]",
                      f"  sizes: [{ROWS}, {COLS}]", ""])


ZIGZAG_MAPPING = f"""\
- name: default
  spatial_mapping:
    D1:
      - K, {ROWS}
    D2:
      - C, {COLS}
  memory_operand_links:
    O: O
    W: I2
    I: I1
"""

SCALESIM_CFG = f"""\
[general]
run_name = peers

[architecture_presets]
ArrayHeight : {ROWS}
ArrayWidth : {COLS}
IfmapSramSzkB : 96
FilterSramSzkB : 128
OfmapSramSzkB : 32
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Dataflow : ws
Bandwidth : {DRAM_BITS_PER_CYCLE // 8}
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : 10
IfmapSRAMBankNum : 10
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : 10
FilterSRAMBankNum : 10
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : CALC
UseRamulatorTrace : False
"""


def write_all(folder: Path) -> dict[str, Path]:
    """Write every description into `folder`; returns their paths by role."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"ours": ("peers-32x32.yaml", OURS), "zigzag_hardware": ("zigzag-hardware.yaml", zigzag_hardware()),
             "zigzag_mapping": ("zigzag-mapping.yaml", ZIGZAG_MAPPING), "scalesim": ("scalesim.cfg", SCALESIM_CFG)}
    paths = {}
    for role, (name, text) in files.items():
        paths[role] = folder / name
        paths[role].write_text(text)
    return paths
