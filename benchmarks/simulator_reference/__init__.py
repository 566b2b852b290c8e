"""The timing simulator as it was before issue 12 sped it up (main at 02c8f0d), kept only as the benchmark's reference.

`benchmarks/simulator_speed.py` times it beside `simulator.timing` in the same run and checks that both give the same
schedule. Copies of simulator/timing.py, systolic.py, bandwidth.py, stats.py and energy.py, with their imports
pointed here; do not edit them (they are the "before" of the figures in benchmarks/RESULTS.md).
"""
