"""What case modules import: markers that declare a case's id, requirements and default expectation."""

from __future__ import annotations

import pytest

from .results import SUPPORTED


def requires(*capabilities: str) -> pytest.MarkDecorator:
    """The case needs these capabilities; on a target without them the cell is ``unsupported`` (as expected)."""
    return pytest.mark.dbmatrix_requires(*capabilities)


def case_id(case: str) -> pytest.MarkDecorator:
    """Override the derived case id (``<family>.<case>`` from module and function names)."""
    return pytest.mark.dbmatrix_case(case)


def expect(outcome: str = SUPPORTED) -> pytest.MarkDecorator:
    """The outcome this case expects where no expectation file says otherwise (default ``supported``)."""
    return pytest.mark.dbmatrix_expect(outcome)

