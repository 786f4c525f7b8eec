"""Performance workloads and the multi-process load generator behind ``dbmatrix bench``."""

from .workloads import WORKLOADS

__all__ = ["WORKLOADS"]
