"""Test-only helpers shared by the suites and the benchmarks (nothing in pyclone_docker/ imports them)."""
