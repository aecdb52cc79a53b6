"""Kernel-dependent tests (see conftest.py and run.py)."""
