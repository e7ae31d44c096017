"""Benchmarks run from the CLI (``engramdb bench ...``); they print figures and never assert."""
