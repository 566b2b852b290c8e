"""Every isl query the scheduler needs (the only place outside planner/ops that calls islpy):

- `footprints`: per block of a statement, the elements it reads and writes (halos included), element counts,
  overlaps, what the outputs depend on, flow dependences;
- `boxes`: a tile's bounding boxes as closed forms in the tile's bounds, one parametric query per kind of statement.
"""

from planner.poly.boxes import AxisBounds, affine_tile_boxes, structure_key, tile_box_functions
from planner.poly.footprints import (
    Block,
    Dependence,
    block_points,
    box_set,
    count,
    flow_dependences,
    footprint,
    needed_elements,
    overlap,
    reuse_elements,
    spans,
    tensor_set,
    write_footprint,
    writers,
)

__all__ = ["AxisBounds", "Block", "Dependence", "affine_tile_boxes", "block_points", "box_set", "count",
           "flow_dependences", "footprint", "needed_elements", "overlap", "reuse_elements", "spans", "structure_key",
           "tensor_set", "tile_box_functions", "write_footprint", "writers"]
