"""Run SCALE-Sim on one topology CSV inside SCALE-Sim's own venv; print one JSON line of per-layer figures.

    python scalesim_driver.py CONFIG.cfg TOPOLOGY.csv LOG_FOLDER

Per layer, from its COMPUTE_REPORT.csv and DETAILED_ACCESS_REPORT.csv: total cycles (without the prefetch), stall
cycles, and DRAM reads and writes in words (one int8 element each here).
"""

import csv
import io
import json
import sys
from contextlib import redirect_stdout
from pathlib import Path

from scalesim.scale_sim import scalesim


def rows(path: Path) -> list[list[str]]:
    with path.open() as handle:
        return [[cell.strip() for cell in row if cell.strip()] for row in csv.reader(handle)][1:]


def main() -> None:
    config, topology, logs = sys.argv[1:4]
    with redirect_stdout(io.StringIO()):  # it prints progress; we print one line of JSON
        sim = scalesim(save_disk_space=True, verbose=False, config=config, topology=topology, layout=topology)
        sim.run_scale(top_path=logs)
    run = next(Path(logs).iterdir())
    names = [row[0] for row in rows(Path(topology))]
    layers = []
    for name, compute, access in zip(names, rows(run / "COMPUTE_REPORT.csv"), rows(run / "DETAILED_ACCESS_REPORT.csv"),
                                     strict=True):
        layers.append({"name": name, "cycles": int(compute[2]), "stall_cycles": int(compute[3]),
                       "dram_words_read": float(access[12]) + float(access[15]),
                       "dram_words_written": float(access[18])})
    print(json.dumps({"cycles": sum(layer["cycles"] for layer in layers), "layers": layers}))


if __name__ == "__main__":
    main()
