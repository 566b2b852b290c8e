"""Run ZigZag on one ONNX model inside ZigZag's own venv; print one JSON line of per-layer figures.

    python zigzag_driver.py MODEL.onnx HARDWARE.yaml MAPPING.yaml DUMP_FOLDER

Per layer: ZigZag's latency (`latency_total2`: compute plus the on- and off-loading it cannot hide), its ideal
cycles, energy, and the bytes read from and written to the top memory level (DRAM), from its own data-movement
counts (elements moved times their precision in bits).
"""

import json
import logging
import sys

from zigzag.api import get_hardware_performance_zigzag
from zigzag.hardware.architecture.memory_port import DataDirection
from zigzag.mapping.data_movement import DataMoveAttr


def dram_bits(cme) -> tuple[float, float]:
    read = written = 0.0
    for layer_op in cme.layer.layer_operands:
        top = cme.mapping.mem_level[layer_op] - 1
        move = cme.mapping.unit_mem_data_movement[layer_op][top]
        counts = move.get_attribute(DataMoveAttr.DATA_ELEM_MOVE_COUNT)
        precision = move.get_attribute(DataMoveAttr.DATA_PRECISION)
        read += counts.get(DataDirection.RD_OUT_TO_LOW) * precision.get(DataDirection.RD_OUT_TO_LOW)
        written += counts.get(DataDirection.WR_IN_BY_LOW) * precision.get(DataDirection.WR_IN_BY_LOW)
    return read, written


def main() -> None:
    model, hardware, mapping, dump = sys.argv[1:5]
    logging.disable(logging.CRITICAL)
    energy, latency, cmes = get_hardware_performance_zigzag(model, hardware, mapping, opt="latency",
                                                            dump_folder=dump, loma_show_progress_bar=False)
    layers = []
    for cme, _ in cmes[0][1]:
        read, written = dram_bits(cme)
        layers.append({"name": cme.layer.name, "latency_cycles": float(cme.latency_total2),
                       "ideal_cycles": float(cme.ideal_cycle), "energy_pj": float(cme.energy_total),
                       "dram_bytes_read": read / 8, "dram_bytes_written": written / 8})
    print(json.dumps({"latency_cycles": float(latency), "energy_pj": float(energy), "layers": layers}))


if __name__ == "__main__":
    main()
