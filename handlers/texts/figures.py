"""The yearly figures in words: one table a person reads, printed by ``report`` and shown in Slack as it is."""

from __future__ import annotations

from datetime import UTC, datetime

from core import DenialReason
from handlers.figures import Figures, Report
from handlers.texts import COMMAND
from handlers.texts.blocks import Block, Message, context, header, section

__all__ = ["figures_blocks", "figures_message", "figures_table", "report_usage"]

_COLUMNS = (
    ("received", lambda f: f.received),
    ("complied", lambda f: f.complied),
    ("in part", lambda f: f.complied_in_part),
    ("no data", lambda f: f.no_data),
    ("denied", lambda f: f.denied),
    ("open", lambda f: f.open),
    ("overdue", lambda f: f.overdue),
    ("median days", lambda f: _days(f.median_days)),
    ("mean days", lambda f: _days(f.mean_days)),
)
LEGEND = (
    "complied: answered in whole or in part (in part: of them); open: not answered yet (overdue: of them, past "
    "the due date); days: whole days from the day the shopper asked to the day they were answered."
)


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _grid(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Columns padded to their widest cell: the first two to the left (names), the rest to the right."""
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head))]

    def line(row: tuple[str, ...]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(cells)).rstrip()

    return [line(row) for row in (head, *rows)]


def _title(report: Report) -> str:
    as_of = datetime.fromtimestamp(report.as_of, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Shopper data requests received {report.period.first.isoformat()} to {report.period.last.isoformat()}"
        f" (by the day the shopper asked), as of {as_of}"
    )


def figures_table(report: Report, *, title: bool = True) -> str:
    """The report as plain text: the figures per kind and law, then the denials by reason, then what they mean."""
    rows = [(kind, law, *(str(value(f)) for _, value in _COLUMNS)) for kind, law, f in report.rows]
    lines = [_title(report), ""] if title else []
    lines += _grid(("kind", "law", *(name for name, _ in _COLUMNS)), rows)
    reasons = [r.value for r in DenialReason]
    denials = [(kind, law, *(str(f.denied_by_reason.get(r, 0)) for r in reasons)) for kind, law, f in _denied(report)]
    lines += ["", "Denied, by reason:"]
    lines += _grid(("kind", "law", *reasons), denials) if denials else ["none denied"]
    return "\n".join(lines)


def _denied(report: Report) -> list[tuple[str, str, Figures]]:
    return [(kind, law, f) for kind, law, f in report.rows if f.denied]


def figures_blocks(report: Report) -> list[Block]:
    """The report for Slack: the same table, in a code block so its columns line up."""
    return [
        header("Requests and answers"),
        section(_title(report)),
        section(f"```{figures_table(report, title=False)}```"),
        context(LEGEND),
    ]


def figures_message(report: Report) -> Message:
    """``/data-request report``'s answer, to the person who asked alone."""
    return {"text": _title(report), "blocks": figures_blocks(report)[1:]}


def report_usage() -> str:
    """A ``report`` typed wrong."""
    return (
        f"`report` takes a year, like `2025` (without one: this year). Try `{COMMAND} report 2025`, "
        f"or `{COMMAND} help` for every command."
    )
