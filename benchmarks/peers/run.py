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

from simulator.machine import MachineConfig
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


def timed(command: list[str], cache: Path, reuse: bool) -> tuple[dict, float]:
    """Run one whole process; its last stdout line is JSON. Returns it with the wall seconds, and keeps both in
    `cache` (read back instead of running with `--reuse`)."""
    if reuse and cache.exists():
        saved = json.loads(cache.read_text())
        return saved["result"], saved["wall_seconds"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command[:3])}...: exit {done.returncode}\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    cache.write_text(json.dumps({"command": command, "result": result, "wall_seconds": seconds}))
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", default="out/peers")
    parser.add_argument("--reuse", action="store_true", help="reuse each tool's saved result (and wall time) from "
                        "an earlier run instead of running it again")
    parser.add_argument("--no-scalesim", default="", metavar="MODEL,...",
                        help="models to leave SCALE-Sim out of (it takes about 5 ms per simulated cycle here)")
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
        unique = list({layer.shape_key: layer for layer in layers}.values())  # identical layers time identically
        write_topology(unique, folder / "topology.csv")
        ours = {}
        for strategy in ("fused", "baseline"):
            ours[strategy] = timed([scratchplan, "simulate", str(model_path), "--machine", str(files["ours"]),
                                    "--dtype", "int8", "--strategy", strategy, "--json"],
                                   folder / f"scratchplan-{strategy}.json", args.reuse)
        zigzag = timed([str(pythons["zigzag"]), str(HERE / "zigzag_driver.py"), str(model_path),
                        str(files["zigzag_hardware"]), str(files["zigzag_mapping"]), str(folder / "zigzag")],
                       folder / "zigzag.json", args.reuse)
        scalesim = None
        if name not in args.no_scalesim.split(","):
            scalesim = timed([str(pythons["scalesim"]), str(HERE / "scalesim_driver.py"), str(files["scalesim"]),
                              str(folder / "topology.csv"), str(folder / "scalesim")], folder / "scalesim.json",
                             args.reuse)
        print_model(name, layers, unique, ours, zigzag, scalesim, machine)


def print_model(name: str, layers: list, unique: list, ours: dict, zigzag: tuple, scalesim: tuple | None,
                machine: MachineConfig) -> None:
    fused, fused_s = ours["fused"]
    base, base_s = ours["baseline"]
    zz, zz_s = zigzag
    compulsory = fused["compulsory_bytes"]
    zz_bytes = sum(layer["dram_bytes_read"] + layer["dram_bytes_written"] for layer in zz["layers"])
    ss_by_key: dict[tuple[int, ...], dict] = {}
    if scalesim is not None:
        ss_by_key = {layer.shape_key: row for layer, row in zip(unique, scalesim[0]["layers"], strict=True)}
    ss_layers = [ss_by_key.get(layer.shape_key) for layer in layers]

    def traffic(report: dict) -> int:
        return report["dram_bytes_read"] + report["dram_bytes_written"]

    print(f"## {name}: {len(layers)} MAC layers ({len(unique)} distinct), compulsory DRAM traffic {compulsory:,} "
          f"bytes\n")
    print("| tool | DRAM bytes | x compulsory | cycles | wall s (whole process) |")
    print("|---|---:|---:|---:|---:|")
    rows = [("scratchplan fused", traffic(fused), fused["total_cycles"], fused_s),
            ("scratchplan baseline", traffic(base), base["total_cycles"], base_s),
            ("ZigZag 3.9.1 (MAC layers only)", zz_bytes, zz["latency_cycles"], zz_s)]
    if scalesim is not None:  # one run per distinct layer, counted once per layer
        ss_bytes = sum(row["dram_words_read"] + row["dram_words_written"] for row in ss_layers if row)  # int8 words
        ss_cycles = sum(row["cycles"] for row in ss_layers if row)
        rows.append((f"SCALE-Sim 3.0.0 (CALC, MAC layers only; {len(unique)} distinct layers run)", ss_bytes,
                     ss_cycles, scalesim[1]))
    for tool, moved, cycles, seconds in rows:
        print(f"| {tool} | {moved:,.0f} | {moved / compulsory:.2f} | {cycles:,.0f} | {seconds:.1f} |")
    ratios = [f"ZigZag: DRAM bytes x{traffic(fused) / zz_bytes:.2f}, cycles "
              f"x{fused['total_cycles'] / zz['latency_cycles']:.2f}, wall x{fused_s / zz_s:.2f}"]
    if scalesim is not None:
        ratios.append(f"SCALE-Sim: DRAM bytes x{traffic(fused) / ss_bytes:.2f}, cycles "
                      f"x{fused['total_cycles'] / ss_cycles:.2f}, wall x{fused_s / scalesim[1]:.2f}")
    else:
        ratios.append("SCALE-Sim: not run on this model (--no-scalesim)")
    print(f"\nours (fused) against {'; '.join(ratios)}\n")
    per_op = {op["name"]: op for op in fused["ops"]}
    base_op = {op["name"]: op for op in base["ops"]}
    zz_layers = {layer["name"]: layer for layer in zz["layers"]}
    print("| layer | mnk | ours 1 tile | SCALE-Sim | 1 tile / SCALE-Sim | ours fused compute | ours baseline compute "
          "| ZigZag latency |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for layer, ss_row in zip(layers, ss_layers, strict=True):
        whole = tensor_cycles(layer.mnk, machine.tensor_engine, "int8")
        fused_compute = per_op.get(layer.name, {}).get("compute_cycles", 0)
        base_compute = base_op.get(layer.name, {}).get("compute_cycles", 0)
        zz_latency = zz_layers.get(layer.name, {}).get("latency_cycles", float("nan"))
        ss_text = f"{ss_row['cycles']:,} | {whole / ss_row['cycles']:.3f}" if ss_row else "- | -"
        print(f"| {layer.name} | {'x'.join(map(str, layer.mnk))} | {whole:,} | {ss_text} | {fused_compute:,} | "
              f"{base_compute:,} | {zz_latency:,.0f} |")
    print()


if __name__ == "__main__":
    main()
