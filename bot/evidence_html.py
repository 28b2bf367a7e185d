"""An evidence document (bot/evidence.py) as one HTML page a person reads, on screen or printed.

Self-contained: the styles are inline and nothing is fetched (no script, image, font or link out), so
the file reads the same offline, years later, and opening it tells no server. Every value is escaped:
Amazon's words and what staff typed are shown as text, never as markup. A record field the database
does not hold says "unknown"; a step that did not happen says "—".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["render_html"]

_MOMENT = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)\+00:00$")  # as the document writes times (UTC)

UNKNOWN = "unknown"
NONE = "—"

# Fields of the compliance record: empty means nobody recorded it, not that it did not happen.
RECORD_FIELDS = frozenset(
    {"received_on", "received_via", "outside_ref", "verified_by", "how", "outcome", "denial_reason", "deadline"}
)

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #111; margin: 2em auto;
       max-width: 60em; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; border-bottom: 1px solid #999; margin-top: 1.6em; padding-bottom: 0.15em; }
table { border-collapse: collapse; width: 100%; margin: 0.4em 0; }
th, td { text-align: left; vertical-align: top; padding: 0.25em 0.5em; border-bottom: 1px solid #ddd;
         overflow-wrap: anywhere; }
table:not(.facts) td:first-child { white-space: nowrap; }
th { background: #f3f3f3; font-weight: 600; }
table.facts th { width: 14em; background: none; }
.meta { color: #555; }
.hash { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.8em; word-break: break-all; }
.broken { color: #a00; font-weight: 600; }
.intact { color: #060; font-weight: 600; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; color: #000; }
  h2 { break-after: avoid; }
  tr, .keep { break-inside: avoid; }
  th { background: none; border-bottom: 1px solid #000; }
  thead { display: table-header-group; }
  @page { margin: 1.5cm; }
}
"""


def _text(value: Any, *, key: str = "") -> str:
    """A value as escaped text: a person as "name (id)", a missing one as unknown or a dash."""
    if value is None or value == "":
        return UNKNOWN if key in RECORD_FIELDS else NONE
    if isinstance(value, Mapping) and "id" in value:
        name = value.get("name")
        return escape(f"{name} ({value['id']})" if name else str(value["id"]))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and (moment := _MOMENT.match(value)):
        return f"{moment.group(1)} {moment.group(2)}"  # the page says once that times are UTC
    return escape(str(value))


def _facts(rows: Iterable[tuple[str, str, Any]]) -> str:
    """A two-column table: label, value (``key`` says whether empty means unknown)."""
    body = "".join(f"<tr><th>{escape(label)}</th><td>{_text(value, key=key)}</td></tr>" for label, key, value in rows)
    return f'<table class="facts">{body}</table>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str) -> str:
    """A table of already-escaped cells, or a sentence when it has no rows."""
    rows = list(rows)
    if not rows:
        return f'<p class="meta">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(title: str, content: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{content}</section>"


def render_html(doc: Mapping[str, Any]) -> str:
    """The whole page for one evidence document."""
    case, intake, shopper = doc["case"], doc["intake"], doc["shopper"]
    verification, approval, outcome, chain = doc["verification"], doc["approval"], doc["outcome"], doc["audit_chain"]
    title = f"Evidence: request {case['request']} ({case['kind']})"
    generated = doc["generated"]
    email_row = [("Shopper's email", "", shopper.get("email"))] if generated["email_revealed"] else []
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Generated {_text(generated["at"])} by {_text(generated["by"])} from the bot\'s database. '
        f"Evidence format {_text(doc['evidence_format'])}. Times are UTC.</p>",
        _section(
            "Case",
            _facts(
                [
                    ("Request", "", case["request"]),
                    ("Kind", "", case["kind"]),
                    ("Status", "", case["status"]),
                    ("Current task", "", case["task"]),
                    ("Slack channel", "", case["channel"]),
                    ("Shopper (masked)", "", shopper["email_masked"]),
                    *email_row,
                    ("Email erased at", "", shopper["email_erased_at"]),
                    *((f"Parameter: {k}", "", v) for k, v in sorted(case["params"].items())),
                ]
            ),
        ),
        _section(
            "Intake",
            _facts(
                [
                    ("Received (shopper asked)", "received_on", intake["received_on"]),
                    ("Received via", "received_via", intake["received_via"]),
                    ("Outside reference", "outside_ref", intake["outside_ref"]),
                    ("Requested in Slack at", "", intake["requested_at"]),
                    ("Requested by", "", intake["requested_by"]),
                    ("Law / deadline", "deadline", intake["deadline"]),
                    ("Answer due", "", intake["due"]),
                ]
            ),
        ),
        _section(
            "Identity verification",
            _facts(
                [
                    ("Verified by", "verified_by", verification["verified_by"]),
                    ("How", "how", verification["how"]),
                    ("When", "", verification["at"]),
                ]
            ),
        ),
        _section(
            "Approvals and other decisions",
            _facts([("Approved by", "", approval["approved_by"]), ("Approved at", "", approval["approved_at"])])
            + _table(
                ("When", "Decision", "By", "Detail", "Audit entry"),
                (
                    (_text(d["at"]), _text(d["action"]), _text(d["by"]), _text(d["detail"]), _text(d["audit_entry"]))
                    for d in approval["decisions"]
                ),
                empty="No approval, rejection, cancellation or retry was recorded.",
            ),
        ),
        _section("Tasks at Amazon", _tasks(doc["tasks"])),
        _section(
            "Downloads shown",
            _table(
                ("When", "Shown to", "Audit entry"),
                ((_text(d["at"]), _text(d["shown_to"]), _text(d["audit_entry"])) for d in doc["downloads"]),
                empty="No download link was shown.",
            ),
        ),
        _section("Reminders and extensions", _reminders(doc)),
        _section(
            "Outcome",
            _facts(
                [
                    ("Outcome", "outcome", outcome["outcome"]),
                    (
                        "Denial reason",
                        "denial_reason" if outcome["outcome"] == "denied" else "",
                        outcome["denial_reason"],
                    ),
                    ("Closed at", "", outcome["closed_at"]),
                    ("Closed by", "", outcome["closed_by"]),
                    ("Cancelled at", "", outcome["cancelled_at"]),
                    ("Cancelled by", "", outcome["cancelled_by"]),
                    *(("Amazon error", "", f"{e['code']}: {e['message']}") for e in outcome["amazon_errors"]),
                ]
            ),
        ),
        _section(
            "Timeline",
            _table(
                ("When", "What", "By", "Detail"),
                ((_text(t["at"]), _text(t["what"]), _text(t["by"]), _text(t["detail"])) for t in doc["timeline"]),
                empty="Nothing recorded.",
            ),
        ),
        _section(
            "Slack posts",
            _table(
                ("Notice", "Queued", "Sent", "Given up", "Attempts"),
                (
                    (
                        _text(p["notice"]),
                        _text(p["queued_at"]),
                        _text(p["sent_at"]),
                        _text(p["gave_up_at"]),
                        _text(p["attempts"]),
                    )
                    for p in doc["slack_posts"]
                ),
                empty="No Slack post was queued.",
            ),
        ),
        _section("Audit entries, with their hashes", _audit(doc["audit"], chain)),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def _tasks(tasks: Sequence[Mapping[str, Any]]) -> str:
    if not tasks:
        return '<p class="meta">No task was started at Amazon.</p>'
    out = []
    for task in tasks:
        facts = _facts(
            [
                ("Task", "", task["task"]),
                ("Started", "", task["started_at"]),
                ("Status", "", task["status"]),
                ("Hold ends", "", task["hold_ends_at"]),
            ]
        )
        events = _table(
            ("Event", "Event id", "Received", "Acted on"),
            (
                (_text(e["type"]), _text(e["event_id"]), _text(e["received_at"]), _text(e["processed_at"]))
                for e in task["events"]
            ),
            empty="The bot holds no event from Amazon for this task: events are forgotten a while after they are"
            " acted on (the audit log keeps each as 'event received').",
        )
        out.append(f'<div class="keep">{facts}{events}</div>')
    return "".join(out)


def _reminders(doc: Mapping[str, Any]) -> str:
    extensions = doc["extensions"]
    return (
        _table(
            ("When", "Reminder", "Audit entry"),
            ((_text(d["at"]), _text(d["which"]), _text(d["audit_entry"])) for d in doc["reminders"]),
            empty="No reminder was sent.",
        )
        + _table(
            ("When", "Extension", "By", "Audit entry"),
            (
                (_text(d["at"]), _text(d["detail"]), _text(d["by"]), _text(d["audit_entry"]))
                for d in extensions["extended"]
            ),
            empty="The deadline was not extended.",
        )
        + _facts([("Shopper told of the extension", "", extensions["shopper_told_at"])])
    )


def _audit(entries: Sequence[Mapping[str, Any]], chain: Mapping[str, Any]) -> str:
    if chain["intact"]:
        state = (
            f'<p><span class="intact">The whole audit log\'s chain was intact</span> when this file was made: '
            f"{_text(chain['entries_checked'])} entries, the newest entry {_text(chain['newest_entry'])} with hash "
            f'<span class="hash">{_text(chain["newest_hash"])}</span>.</p>'
        )
    else:
        broken = _text(chain["broken"])
        state = f'<p class="broken">The audit log\'s chain was broken when this file was made: {broken}.</p>'
    how = (
        f'<p class="meta">Each hash: {_text(chain["hash"])}. '
        "Check the log with <code>data-request-bot audit --verify</code>.</p>"
    )
    table = _table(
        ("Entry", "When", "Actor", "Action", "Detail", "Previous hash / hash"),
        (
            (
                _text(e["id"]),
                _text(e["at"]),
                _text({"id": e["actor"], "name": e["actor_name"]}),
                _text(e["action"]),
                _text(e["detail"]),
                f'<span class="hash">{_text(e["prev_hash"])}<br>{_text(e["hash"])}</span>',
            )
            for e in entries
        ),
        empty="No audit entry names this case.",
    )
    return state + how + table
