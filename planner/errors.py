"""The one exception the planner raises for bad input.

The CLI turns it into a single line on stderr and exit status 2, so the message must name the file, node, tensor or
flag at fault and say what would fix it.
"""


class PlanError(ValueError):
    """Bad input to the planner: a malformed model, an unsupported op, a shape with no meaning.

    >>> str(PlanError("model.onnx: node 'conv1': stride 0 along axis 2"))
    "model.onnx: node 'conv1': stride 0 along axis 2"
    """
