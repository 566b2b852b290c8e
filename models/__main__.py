"""Write zoo models as ONNX files: ``python -m models --out DIR [--small | --full] [--only NAME ...]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import onnx

from models import ZOO, build

PROTOBUF_LIMIT_BYTES = 2**31 - 1  # a single serialized ModelProto cannot exceed 2 GiB


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m models",
        description="Write zoo models to DIR/<name>.onnx (full size) and DIR/<name>-small.onnx (small variant). "
        "By default both variants of every model are written; weights are inline unless a model would exceed "
        "the 2 GiB protobuf limit, in which case they go to DIR/<file>.data.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    variant = parser.add_mutually_exclusive_group()
    variant.add_argument("--small", action="store_true", help="write only the small variants (<name>-small.onnx)")
    variant.add_argument("--full", action="store_true", help="write only the full-size models (<name>.onnx)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(ZOO), help="models to write (default: all)")
    parser.add_argument("--batch", type=int, default=1, help="static batch size (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="weight RNG seed (default 0)")
    return parser.parse_args(argv)


def write_model(model: onnx.ModelProto, path: Path) -> int:
    """Save ``model`` to ``path`` (external data beyond 2 GiB) and return the bytes written."""
    if model.ByteSize() > PROTOBUF_LIMIT_BYTES:
        data_name = f"{path.name}.data"
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location=data_name)
        return path.stat().st_size + (path.parent / data_name).stat().st_size
    onnx.save_model(model, path)
    return path.stat().st_size


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    variants = [False] if args.full else [True] if args.small else [False, True]
    for name in args.only or list(ZOO):
        for small in variants:
            path = args.out / f"{name}{'-small' if small else ''}.onnx"
            size_bytes = write_model(build(name, small=small, batch=args.batch, seed=args.seed), path)
            print(f"{path}  {size_bytes:,} bytes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
