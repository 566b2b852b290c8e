"""The whole-graph choice, as a frozen Schedule (planner.schedule.ir) between the search and staging.

    search.py     candidates (cut points, group tiles, residency policies) compared by the cost model alone
    cost.py       prices a Schedule without building a Program: DRAM bytes exactly, cycles from the engine formulas
    op_tiles.py   the tiling of an op staged alone, in the room the resident tensors leave
    residency.py  which tensors stay whole in the scratchpad between ops
    ir.py         the Schedule itself
"""
