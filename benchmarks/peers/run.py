"""scratchplan side by side with ZigZag and SCALE-Sim, in one run, on one matched machine.

    python benchmarks/peers/run.py [--models small_cnn,basic_block,resnet18] [--out out/peers]

Makes the peers' venvs under `out/peers-venvs/` on first use (ZigZag: zigzag-dse 3.9.1 and six; SCALE-Sim: scalesim
3.0.0 with numpy below 2.4), outside the project's environment. Writes each tool's description of the same machine
(`machines.py`) and each model (`workloads.py`) into `--out`, runs every tool as its own process, and prints per
model: DRAM bytes and x compulsory, cycles per tool and per MAC layer, wall seconds of each whole process, and our
ratios against each peer. What each peer leaves out is printed with the table, as a fact:

- ZigZag models only the MAC layers (Conv, Gemm, MatMul): Relu, MaxPool, Add... cost it nothing, and each layer
  starts and ends in DRAM; it searches a loop mapping per layer (its latency is the best mapping's).
- SCALE-Sim models only Conv and GEMM layers, one at a time, with no accumulation across folds: every fold of the
  reduction writes its partial sums out (its ofmap DRAM writes are folds x outputs), and in CALC mode DRAM never
  stalls the array, so its cycles are compute cycles.

Per-layer compute cycles: ours are the engine-busy cycles of each op's computes in the simulated plan (`compute`),
and the engine formula on the whole layer as one tile (`1 tile`), which is the like-for-like figure against
SCALE-Sim's; the gap between the two is the extra folds the scratchpad forced on the plan's tiles.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machines import write_all
from workloads import MODELS, mac_layers, write_topology

from simulator.machine_file import load_machine
from simulator.systolic import tensor_cycles

HERE = Path(__file__).resolve().parent
PEERS = {"zigzag": ["zigzag-dse==3.9.1", "six"], "scalesim": ["scalesim==3.0.0", "numpy<2.4"]}


def venv_python(root: Path, name: str) -> Path:
    """The peer's venv python, made and filled on first use."""
    python = root / name / "bin" / "python"
    if not (root / name / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", str(root / name)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS[name]], check=True)
        (root / name / ".installed").write_text(" ".join(PEERS[name]) + "\n")
    return python


def timed(command: list[str]) -> tuple[dict, float]:
    """Run one whole process; its last stdout line is JSON. Returns it with the wall seconds."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command[:3])}...: exit {done.returncode}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", default="out/peers")
    args = parser.parse_args()
    out = Path(args.out)
    files = write_all(out)
    pythons = {name: venv_python(out.parent / "peers-venvs", name) for name in PEERS}
    machine = load_machine(files["ours"])
    scratchplan = str(Path(sys.executable).parent / "scratchplan")
    print(f"machine: {files['ours']}, {files['zigzag_hardware']}, {files['scalesim']} (32x32 int8 MACs, 256 KiB, "
          f"64 bits/cycle of DRAM)\n")
    for name in args.models.split(","):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        model_path = folder / f"{name}.onnx"
        onnx.save(onnx.shape_inference.infer_shapes(MODELS[name]()), model_path)
        layers = mac_layers(onnx.load(model_path))
        write_topology(layers, folder / "topology.csv")
        ours = {}
        for strategy in ("fused", "baseline"):
            ours[strategy] = timed([scratchplan, "simulate", str(model_path), "--machine", str(files["ours"]),
                                    "--dtype", "int8", "--strategy", strategy, "--json"])
        zigzag = timed([str(pythons["zigzag"]), str(HERE / "zigzag_driver.py"), str(model_path),
                        str(files["zigzag_hardware"]), str(files["zigzag_mapping"]), str(folder / "zigzag")])
        scalesim = timed([str(pythons["scalesim"]), str(HERE / "scalesim_driver.py"), str(files["scalesim"]),
                          str(folder / "topology.csv"), str(folder / "scalesim")])
        print_model(name, layers, ours, zigzag, scalesim, machine)


def print_model(name: str, layers: list, ours: dict, zigzag: tuple, scalesim: tuple, machine) -> None:
    fused, fused_s = ours["fused"]
    base, base_s = ours["baseline"]
    zz, zz_s = zigzag
    ss, ss_s = scalesim
    compulsory = fused["compulsory_bytes"]
    zz_bytes = sum(layer["dram_bytes_read"] + layer["dram_bytes_written"] for layer in zz["layers"])
    ss_bytes = sum(layer["dram_words_read"] + layer["dram_words_written"] for layer in ss["layers"])  # int8 words

    def traffic(report: dict) -> int:
        return report["dram_bytes_read"] + report["dram_bytes_written"]

    print(f"## {name}: {len(layers)} MAC layers, compulsory DRAM traffic {compulsory:,} bytes\n")
    print("| tool | DRAM bytes | x compulsory | cycles | wall s (whole process) |")
    print("|---|---:|---:|---:|---:|")
    rows = [("scratchplan fused", traffic(fused), fused["total_cycles"], fused_s),
            ("scratchplan baseline", traffic(base), base["total_cycles"], base_s),
            ("ZigZag 3.9.1 (MAC layers only)", zz_bytes, zz["latency_cycles"], zz_s),
            ("SCALE-Sim 3.0.0 (CALC, MAC layers only)", ss_bytes, ss["cycles"], ss_s)]
    for tool, moved, cycles, seconds in rows:
        print(f"| {tool} | {moved:,.0f} | {moved / compulsory:.2f} | {cycles:,.0f} | {seconds:.1f} |")
    print(f"\nours (fused) against each peer: DRAM bytes x{traffic(fused) / zz_bytes:.2f} of ZigZag's, "
          f"x{traffic(fused) / ss_bytes:.2f} of SCALE-Sim's; cycles x{fused['total_cycles'] / zz['latency_cycles']:.2f}"
          f" of ZigZag's, x{fused['total_cycles'] / ss['cycles']:.2f} of SCALE-Sim's; wall time "
          f"x{fused_s / zz_s:.2f} of ZigZag's, x{fused_s / ss_s:.2f} of SCALE-Sim's\n")
    per_op = {op["name"]: op for op in fused["ops"]}
    base_op = {op["name"]: op for op in base["ops"]}
    zz_layers = {layer["name"]: layer for layer in zz["layers"]}
    print("| layer | mnk | ours 1 tile | SCALE-Sim | 1 tile / SCALE-Sim | ours fused compute | ours baseline compute "
          "| ZigZag latency |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for layer, ss_layer in zip(layers, ss["layers"], strict=True):
        whole = tensor_cycles(layer.mnk, machine.tensor_engine, "int8")
        fused_compute = per_op.get(layer.name, {}).get("compute_cycles", 0)
        base_compute = base_op.get(layer.name, {}).get("compute_cycles", 0)
        zz_latency = zz_layers.get(layer.name, {}).get("latency_cycles", float("nan"))
        print(f"| {layer.name} | {'x'.join(map(str, layer.mnk))} | {whole:,} | {ss_layer['cycles']:,} | "
              f"{whole / ss_layer['cycles']:.3f} | {fused_compute:,} | {base_compute:,} | {zz_latency:,.0f} |")
    print()


if __name__ == "__main__":
    main()
