"""Reading an ONNX file as exporters write it, and refusing, in one line, files that are not models.

Everything here works on the protobuf: structural checks (cycles, missing producers, two producers of one tensor),
the IR-3 convention of listing initializers as inputs, shape overrides and the ONNX checker. The result is a model
whose nodes are topologically sorted and whose inputs have static shapes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import networkx as nx
import onnx
from google.protobuf.message import DecodeError

from planner.errors import PlanError

STANDARD_DOMAINS = ("", "ai.onnx")
OLDEST_OPSET = 7  # where numpy-style broadcasting began and consumed_inputs was gone: what the lowerings assume


def read_model(source: str | os.PathLike[str] | onnx.ModelProto) -> tuple[onnx.ModelProto, str, Path | None]:
    """Parse a model without reading external data; return it, a name for messages, and its folder.

    >>> read_model("no/such.onnx")
    Traceback (most recent call last):
    planner.errors.PlanError: no/such.onnx: no such file
    """
    if isinstance(source, onnx.ModelProto):
        where = source.graph.name or "<model>"
        _check_has_graph(source, where)
        return _copy(source), where, None  # the passes below edit their own copy
    path = Path(source)
    where = str(source)
    if not path.exists():
        raise PlanError(f"{where}: no such file")
    if path.is_dir():
        raise PlanError(f"{where}: is a directory, not an ONNX file")
    if path.stat().st_size == 0:
        raise PlanError(f"{where}: empty file, not an ONNX model")
    try:
        model = onnx.load(path, load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, UnicodeDecodeError) as exc:
        raise PlanError(f"{where}: not an ONNX model (protobuf does not parse: {_one_line(exc)})") from None
    _check_has_graph(model, where)
    return model, where, path.resolve().parent


def _check_has_graph(model: onnx.ModelProto, where: str) -> None:
    if not model.HasField("graph") or len(model.graph.node) == 0 or model.ir_version <= 0:
        raise PlanError(f"{where}: not an ONNX model (no graph, no nodes or no IR version; truncated file?)")


def check_external_data(model: onnx.ModelProto, where: str, folder: Path | None) -> None:
    """Refuse external data that is missing or lies outside the model's own folder; never read it."""
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        if folder is None:
            raise PlanError(f"{where}: initializer {tensor.name!r} has external data; load the model from its file")
        target = (folder / location).resolve()
        if not location or os.path.isabs(location) or not target.is_relative_to(folder):
            raise PlanError(f"{where}: initializer {tensor.name!r}: external data {location!r} lies outside the "
                            "model's folder; it is not read")
        if not target.is_file():
            raise PlanError(f"{where}: initializer {tensor.name!r}: external data file {location!r} is missing")
        end = int(info.get("offset", 0)) + int(info.get("length", 0))
        if end > target.stat().st_size:
            raise PlanError(f"{where}: initializer {tensor.name!r}: external data file {location!r} is shorter than "
                            f"offset + length ({end} bytes)")


def check_domains(model: onnx.ModelProto, where: str) -> None:
    """Only the standard ONNX domain, at an opset onnx knows, is planned: other ops have no semantics we can lower."""
    for index, node in enumerate(model.graph.node):
        if node.domain not in STANDARD_DOMAINS:
            raise PlanError(f"{where}: node {_node_label(model.graph, index)}: op {node.domain}::{node.op_type} is "
                            "from a non-standard domain; only the standard ONNX domain (ai.onnx) is supported")
    newest = onnx.defs.onnx_opset_version()
    for entry in model.opset_import:
        if entry.domain not in STANDARD_DOMAINS:
            continue
        if entry.version > newest:
            raise PlanError(f"{where}: opset_import: ai.onnx version {entry.version} is newer than the installed onnx "
                            f"knows (versions {OLDEST_OPSET} to {newest}); upgrade onnx, or export at an older opset")
        if entry.version < OLDEST_OPSET:
            # Older ops had other semantics (consumed_inputs, broadcast and axis attributes) that nothing here lowers.
            raise PlanError(f"{where}: opset_import: ai.onnx version {entry.version} is older than {OLDEST_OPSET}, the "
                            "oldest that can be planned; convert it with onnx.version_converter.convert_version")


def sort_and_check_structure(model: onnx.ModelProto, where: str) -> None:
    """Drop IR-3 initializer inputs, put the nodes in topological order and give each a unique name, in place
    (weights are not copied); an unnamed node is called `{op_type}_{index in the file}` from here on.

    Refuses a cycle, a tensor written by two nodes, an input nothing provides and an output nothing produces.
    """
    graph = model.graph
    initializers = {tensor.name for tensor in graph.initializer}
    # IR 3 (and PyTorch's keep_initializers_as_inputs) list every initializer as a graph input too: a constant.
    real_inputs = [value for value in graph.input if value.name not in initializers]
    del graph.input[:]
    graph.input.extend(real_inputs)
    # IR 4 is the version that allows initializers that are not inputs; without it the checker refuses the model.
    model.ir_version = max(model.ir_version, 4)

    provided = {value.name: "graph input" for value in graph.input} | {name: "initializer" for name in initializers}
    producer: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for out in node.output:
            if not out:
                continue
            if out in producer or out in provided:
                first = _node_label(graph, producer[out]) if out in producer else provided[out]
                raise PlanError(f"{where}: tensor {out!r} is written twice: by {first} and by node "
                                f"{_node_label(graph, index)}")
            producer[out] = index
    dag = nx.DiGraph()
    dag.add_nodes_from(range(len(graph.node)))
    for index, node in enumerate(graph.node):
        for name in node.input:
            if not name or name in provided:
                continue
            if name not in producer:
                raise PlanError(f"{where}: node {_node_label(graph, index)} reads {name!r}, which no node, input or "
                                "initializer provides")
            dag.add_edge(producer[name], index)
    if not graph.output:
        raise PlanError(f"{where}: the graph has no outputs, so there is nothing to compute")
    for value in graph.output:
        if value.name not in producer and value.name not in provided:
            raise PlanError(f"{where}: graph output {value.name!r} is produced by no node")
    try:
        order = list(nx.lexicographical_topological_sort(dag))
    except nx.NetworkXUnfeasible:
        cycle = [_node_label(graph, edge[0]) for edge in nx.find_cycle(dag)]
        raise PlanError(f"{where}: the graph has a cycle through nodes {', '.join(cycle)}") from None
    nodes = [_copy_node(graph.node[index]) for index in order]
    # Every later message (checker, shape inference, folding, lowering) names the node, so each needs a unique name.
    seen = {node.name for node in nodes if node.name}
    named: set[str] = set()
    for index, node in zip(order, nodes, strict=True):
        if node.name and node.name not in named:
            named.add(node.name)
            continue
        base = node.name or f"{node.op_type}_{index}"
        name, suffix = base, 1
        while name in seen or name in named:
            name, suffix = f"{base}_{suffix}", suffix + 1
        node.name = name
        named.add(name)
    del graph.node[:]
    graph.node.extend(nodes)


def apply_shape_overrides(model: onnx.ModelProto, where: str, batch: int | None,
                          input_shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Fix every input's dims from `--input-shape` and `--batch`, in place; a dim left symbolic is an error naming the
    flag that fixes it."""
    names = [value.name for value in model.graph.input]
    for name in input_shapes:
        if name not in names:
            raise PlanError(f"--input-shape: model {where} has no input {name!r}; its inputs are {', '.join(names)}")
    if batch is not None and batch <= 0:
        raise PlanError(f"--batch must be positive, not {batch}")
    # --batch fills symbolic leading dims; a model exported with a fixed batch of 1 has none, so there it replaces
    # the leading 1s (a weight fed as an input, with a leading dim of 4, is left alone either way).
    leading = [value.type.tensor_type.shape.dim[0] for value in model.graph.input
               if value.type.tensor_type.HasField("shape") and len(value.type.tensor_type.shape.dim)]
    symbolic_batch = any(not (d.HasField("dim_value") and d.dim_value > 0) for d in leading)
    resized = False
    for value in model.graph.input:
        tensor_type = value.type.tensor_type
        if not value.type.HasField("tensor_type"):
            raise PlanError(f"{where}: input {value.name!r} is not a tensor")
        dims: list[int | None] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                                  for d in tensor_type.shape.dim]
        labels = [d.dim_param or "?" for d in tensor_type.shape.dim]
        if value.name in input_shapes:
            given = input_shapes[value.name]
            if tensor_type.HasField("shape") and len(given) != len(dims):
                raise PlanError(f"--input-shape {value.name}: rank {len(given)} given, but the input has rank "
                                f"{len(dims)}")
            dims = list(given)
        elif batch is not None and dims and (dims[0] is None if symbolic_batch else dims[0] == 1):
            dims[0] = batch
        elif not tensor_type.HasField("shape"):
            raise PlanError(f"{where}: input {value.name!r} has no shape; give it with --input-shape "
                            f"{value.name}=DxDx...")
        for axis, dim in enumerate(dims):
            if dim is None:
                fix = "--batch N or " if axis == 0 else ""
                raise PlanError(f"{where}: input {value.name!r} has dynamic dim {axis} ({labels[axis]!r}); fix it with "
                                f"{fix}--input-shape {value.name}={'x'.join(str(d or 'N') for d in dims)}")
        resized |= any(d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != dim
                       for d, dim in zip(tensor_type.shape.dim, dims, strict=False))
        tensor_type.shape.Clear()
        for dim in dims:
            tensor_type.shape.dim.add().dim_value = int(dim)  # type: ignore[arg-type]
    inputs = {value.name: value.type for value in model.graph.input}
    for value in model.graph.output:
        if value.name in inputs:  # an input passed through as an output: shape inference would take the output's
            value.type.CopyFrom(inputs[value.name])
        elif resized:  # a fixed dim was overridden: the declared output shape was for the old one, so infer it anew
            for dim in value.type.tensor_type.shape.dim:
                dim.Clear()


def run_checker(model: onnx.ModelProto, where: str) -> None:
    """The ONNX checker, reported as one line that names the node at fault.

    It sees a copy where needed: external weights become typed inputs (it would look for their files relative to the
    working directory; check_external_data has checked them against the model's folder), and outputs declared
    without a shape are left out (onnxruntime runs such files, and shape inference fills them in).
    """
    external = [tensor for tensor in model.graph.initializer if tensor.data_location == onnx.TensorProto.EXTERNAL]
    shapeless = [value for value in model.graph.output if not value.type.tensor_type.HasField("shape")]
    if external or shapeless:
        model = _copy(model)
        internal = [tensor for tensor in model.graph.initializer if tensor.data_location != onnx.TensorProto.EXTERNAL]
        del model.graph.initializer[:]
        model.graph.initializer.extend(internal)
        model.graph.input.extend(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims)
                                 for tensor in external)
        shaped = [value for value in model.graph.output if value.type.tensor_type.HasField("shape")]
        del model.graph.output[:]
        model.graph.output.extend(shaped)
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise onnx_error(where, "ONNX checker", exc) from None


def onnx_error(where: str, stage: str, exc: BaseException) -> PlanError:
    """An error from onnx's checker or shape inference as one line, led by the node it names.

    >>> str(onnx_error("m.onnx", "shape inference", ValueError("[ShapeInferenceError] Inference error(s): "
    ...     "(op_type:Conv, node name: conv1): [ShapeInferenceError] Attribute pads must not contain negative values")))
    "m.onnx: node 'conv1' (Conv): shape inference: Attribute pads must not contain negative values"
    """
    text = str(exc)
    inferred = re.search(r"\(op_type:([^,)]+)(?:, node name: ([^)]*))?\): (?:\[\w+\] )?([^\n]*)", text)
    checked = re.search(r"==> Context: Bad node spec for node\. Name: (\S*) OpType: (\S+)", text)
    if inferred:
        op_type, name, detail = inferred.groups()
    elif checked:
        name, op_type = checked.groups()
        detail = text[:checked.start()]
    else:
        return PlanError(f"{where}: {stage}: {_one_line(exc)}")
    node = f"node {name!r} ({op_type})" if name else f"a {op_type} node"
    return PlanError(f"{where}: {node}: {stage}: {_one_line(detail)}")


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def _copy_node(node: onnx.NodeProto) -> onnx.NodeProto:
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    return copy


def _node_label(graph: onnx.GraphProto, index: int) -> str:
    node = graph.node[index]
    return repr(node.name) if node.name else f"#{index} ({node.op_type})"


def _one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")
