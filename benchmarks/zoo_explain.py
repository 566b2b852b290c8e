"""Where the bytes and cycles of a `zoo_table.py` row go: by tensor role, by engine, and the ops that move the most.

    python benchmarks/zoo_explain.py --rows out/zoo/rows.jsonl --reports out/zoo/reports [--models resnet50 ...]
                                     [--machines edge-npu] [--top 8]

Reads what `zoo_table.py` saved (its rows, and with `--reports` each job's `compare --json` document) and prints, per
finished row, Markdown: both plans' DRAM bytes split by the role of the tensor moved (constants, model inputs and
outputs, intermediates: the split is read off the emitted DMAs), the engines' and DMA queues' busy cycles beside the
run time and the roofline ("stall" sums the engines' idle waits on DMA, so it may exceed the run time), and the
`--top` ops by fused DRAM bytes with their baseline figures. Nothing is planned or simulated.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROLES = ("constant", "input", "output", "intermediate")


def explain(row: dict[str, Any], reports: Path | None, top: int) -> list[str]:
    name = f"{row['model']} on {row['machine']}, batch {row['batch']}"
    lines = [f"### {name}", ""]
    base, fused = row["baseline"], row["fused"]
    if "roles" in fused:
        lines += ["| DRAM bytes | baseline read | baseline written | fused read | fused written | tensors' size |",
                  "|---|---:|---:|---:|---:|---:|"]
        for role in ROLES:
            b, f = base["roles"].get(role, {}), fused["roles"].get(role, {})
            size = max(b.get("tensor_bytes", 0), f.get("tensor_bytes", 0))
            if b or f:
                lines.append(f"| {role} | {b.get('read', 0):,} | {b.get('written', 0):,} | {f.get('read', 0):,} | "
                             f"{f.get('written', 0):,} | {size:,} |")
        lines.append("")
    lines += ["| cycles | total | roofline | stall | tensor busy | vector busy | busiest DMA queue | DMA queues |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    document = _report(row, reports)
    for strategy, figures in (("baseline", base), ("fused", fused)):
        busy = figures["busy_cycles"]
        queues = [cycles for resource, cycles in busy.items() if resource.startswith("dma")]
        stall = f"{document[strategy]['stall_cycles']:,}" if document else ""
        lines.append(f"| {strategy} | {figures['cycles']:,} | {row['roofline_cycles']:,} | {stall} | "
                     f"{busy.get('tensor', 0):,} | {busy.get('vector', 0):,} | {max(queues, default=0):,} | "
                     f"{len(queues)} |")
    lines.append("")
    if document is not None:
        lines += op_lines(document, top)
    return lines


def op_lines(document: dict[str, Any], top: int) -> list[str]:
    ops = {op["name"]: op for op in document["baseline"]["ops"]}
    fused = sorted(document["fused"]["ops"], key=lambda op: -(op["dram_bytes_read"] + op["dram_bytes_written"]))
    total = sum(op["dram_bytes_read"] + op["dram_bytes_written"] for op in fused)
    lines = [f"Top {top} ops by fused DRAM bytes (of {total:,} in {len(fused)} ops):", "",
             "| op | fused read | fused written | baseline read | baseline written | fused span cyc | "
             "fused engine cyc |", "|---|---:|---:|---:|---:|---:|---:|"]
    for op in fused[:top]:
        b = ops.get(op["name"], {})
        lines.append(f"| {op['name']} | {op['dram_bytes_read']:,} | {op['dram_bytes_written']:,} | "
                     f"{b.get('dram_bytes_read', 0):,} | {b.get('dram_bytes_written', 0):,} | {op['cycles']:,} | "
                     f"{op['compute_cycles']:,} |")
    lines.append("")
    writers = sum(op["dram_bytes_written"] > 0 for op in document["fused"]["ops"])
    lines.append(f"Ops that write DRAM: fused {writers} of {len(fused)}, baseline "
                 f"{sum(op['dram_bytes_written'] > 0 for op in document['baseline']['ops'])} of {len(ops)}.")
    return [*lines, ""]


def _report(row: dict[str, Any], reports: Path | None) -> dict[str, Any] | None:
    if reports is None:
        return None
    path = reports / f"{row['model']}.{row['machine']}.b{row['batch']}.json"
    return dict(json.loads(path.read_text())) if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=Path, required=True)
    parser.add_argument("--reports", type=Path)
    parser.add_argument("--models", nargs="+")
    parser.add_argument("--machines", nargs="+")
    parser.add_argument("--batch", type=int, nargs="+")
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args(argv)
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    for line in args.rows.read_text().splitlines():
        if line.strip() and "error" not in (row := json.loads(line)):
            rows[(row["model"], row["machine"], int(row["batch"]))] = row  # the last finished row of a job
    for (model, machine, batch), row in rows.items():
        if ((not args.models or model in args.models) and (not args.machines or machine in args.machines)
                and (not args.batch or batch in args.batch)):
            print("\n".join(explain(row, args.reports, args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
