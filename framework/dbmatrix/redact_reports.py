"""pytest plugin: test reports (tracebacks with their function arguments and locals, captured output) are scrubbed
of passwords before pytest prints them or writes them to junit XML.

A driver's traceback shows the arguments of every frame — ``kwargs = {'user': ..., 'password': ...}`` for a
``connect`` call — so the report is redacted where it is made, once, for every consumer.
"""

from __future__ import annotations

from typing import Any

import pytest

from .redaction import scrub


class RedactReports:
    name = "dbmatrix-redact-reports"

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Any:
        report = yield
        redact_report(report)
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Any:
        report = yield
        redact_report(report)
        return report


def redact_report(report: Any) -> None:
    if report.longrepr is not None:
        text = str(report.longrepr)
        clean = scrub(text)
        if clean != text:
            # the structured repr keeps the secret in its parts; the scrubbed text replaces it whole
            report.longrepr = clean
    report.sections = [(title, scrub(content)) for title, content in report.sections]
