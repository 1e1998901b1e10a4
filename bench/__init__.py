"""pylinkjl's benchmarks: ``python -m bench [--quick] [--json FILE]`` prints one table measured in one run.

Each module has ``run(quick: bool) -> list[dict]`` returning rows ``{"name", "value", "unit", "note"}``:
``link`` (pylinkjl vs LLD alone), ``relink`` (batch speed-up), ``verify`` (vs llvm-readobj) and
``depot`` (scanning 1,000 caches, CRC throughput). Inputs are generated once into ``bench/out/``.
"""
