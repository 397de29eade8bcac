"""The per-run HTML report (``report.html``), written at the end of every run."""

from resnetkit.report.html import write_report

__all__ = ["write_report"]
