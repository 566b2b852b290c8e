"""Staging: a chosen schedule lowered to a Program (loads, computes, stores, releases, addresses).

    builder  ProgramBuilder: buffers, instructions, dependencies, and the final allocation
    alloc    addresses from lifetimes
    op       one statement tiled on its own
    group    one fusion group, tile by tile
    split    reductions split into slices with partial sums on chip
    tile     the tile an op staged alone gets: the largest that fits, widened where the engine's cycles drop
    layout   the DRAM layout of every intermediate it spills, so tiles move in long runs
"""
