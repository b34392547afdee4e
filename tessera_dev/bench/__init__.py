"""Benchmarks: each module runs with ``python -m tessera_dev.bench.NAME --help`` and prints its
figures; ``tests/tessera_dev/test_bench_quick.py`` runs each one small, so none rots."""
