"""dbmatrix: one matrix of what your database stack really does."""

__version__ = "0.1.0"
