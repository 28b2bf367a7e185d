"""``GET /metrics``: the bot's numbers in Prometheus's text format, with prometheus-client.

Each runtime has a registry of its own (never the process-wide default), so two
bots in one process (the tests) never count into each other. Counters move as
the bot works; the case and queue numbers are read from the database at each
scrape, so they are true after a restart too. Labels carry names of operations,
methods and outcomes only: never an email, a task id or a user id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics", "outcome_label"]

# What generate_latest writes is the classic text format; say so, as every Prometheus version understands it
# (newer prometheus-client versions label it 1.0.0, which older servers refuse).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PREFIX = "data_request_bot"
_LABEL = re.compile(r"^[A-Za-z0-9_.]{1,48}$")


def outcome_label(text: str) -> str:
    """A bounded, safe label value for an outcome (``not_in_channel``, ``HTTP 503`` → ``http_503``)."""
    value = text.strip().lower().replace(" ", "_")
    return value if _LABEL.match(value) else "other"


def _name_label(text: str) -> str:
    """A method's name as Slack spells it (``chat.postMessage``), or ``other`` if it is not a plain name."""
    return text if _LABEL.match(text) else "other"


class Metrics:
    """Every metric the bot exports, registered in this runtime's own registry."""

    def __init__(self, *, socket_mode: bool = False) -> None:
        """``socket_mode``: export whether Socket Mode's connection is up (in HTTP mode there is none to report)."""
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.amazon_calls = Counter(
            f"{_PREFIX}_amazon_calls",
            "Calls to Buy with Prime, by operation and outcome",
            ["operation", "outcome"],
            registry=r,
        )
        self.amazon_seconds = Histogram(
            f"{_PREFIX}_amazon_call_seconds",
            "How long a call to Buy with Prime took, by operation",
            ["operation"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.slack_calls = Counter(
            f"{_PREFIX}_slack_calls",
            "Calls to Slack's Web API, by method and outcome",
            ["method", "outcome"],
            registry=r,
        )
        self.relay_events = Counter(
            f"{_PREFIX}_relay_events", "Requests to the event relay, by result", ["result"], registry=r
        )
        self.reminders_sent = Counter(f"{_PREFIX}_reminders_sent", "Deadline reminders queued for a thread", registry=r)
        self.reconciler_passes = Counter(
            f"{_PREFIX}_reconciler_passes",
            "Reconciler passes over unfinished requests, by result",
            ["result"],
            registry=r,
        )
        # Read from the database at each scrape.

        def gauge(name: str, documentation: str) -> Gauge:
            return Gauge(f"{_PREFIX}_{name}", documentation, registry=r)

        self.cases = Gauge(f"{_PREFIX}_cases", "Cases stored, by kind and status", ["kind", "status"], registry=r)
        self.cases_open = gauge("cases_open", "Cases staff still owe a shopper an answer on")
        self.cases_overdue = gauge("cases_overdue", "Open cases past their answer's due date")
        self.requests_unfinished = gauge("requests_unfinished", "Requests whose task has not ended at Amazon")
        self.inbox_pending = gauge("inbox_pending", "Relayed events stored, not yet applied")
        self.outbox_pending = gauge("outbox_pending", "Slack posts queued, not yet sent")
        self.outbox_oldest_age = gauge("outbox_oldest_age_seconds", "Age of the oldest queued Slack post (0 when none)")
        self.database_writes_failing = gauge(
            "database_writes_failing",
            "1 while the database refuses writes (disk full, read-only), from a refused write until one commits",
        )
        self.wal_bytes = gauge(
            "database_wal_bytes", "Size of the database's write-ahead log file (emptied at 16 MB, or when writes pause)"
        )
        self.wal_checkpoints_failing = gauge(
            "database_checkpoints_failing",
            "1 while the WAL checkpoints fail (the WAL grows until one works; commands are not affected)",
        )
        self.slack_socket_connected = (
            gauge("slack_socket_mode_connected", "Socket Mode only: 1 while the connection to Slack is up")
            if socket_mode
            else None
        )
        self.outbox_abandoned = gauge(
            "slack_posts_abandoned", "Slack posts given up on for good (each is in the audit log)"
        )
        self.leader = gauge(
            "leader", "1 while this copy runs the reconciler, reminders and retention (one copy per database)"
        )
        # From the outage board (core's Outages): what someone must fix, now and so far.
        self.outage_active = Gauge(
            f"{_PREFIX}_outage_active",
            "1 while Slack or Buy with Prime refuses the bot for a reason an operator fixes, by source and code",
            ["source", "code"],
            registry=r,
        )
        self.outage_episodes = Counter(
            f"{_PREFIX}_outage_episodes",
            "Outages an operator fixes that began, by source and code",
            ["source", "code"],
            registry=r,
        )

    def observe_amazon(self, operation: str, outcome: str, seconds: float) -> None:
        """One HTTP call to Buy with Prime (an attempt: retries count once each)."""
        self.amazon_calls.labels(operation, outcome).inc()
        self.amazon_seconds.labels(operation).observe(seconds)

    def relay_event(self, result: str) -> None:
        """The relay answered one request: ``stored``, ``duplicate``, ``ignored``, a refusal or ``not_stored``."""
        self.relay_events.labels(result).inc()

    def reminder_sent(self) -> None:
        """A deadline reminder was queued for a thread."""
        self.reminders_sent.inc()

    def reconciler_pass(self, result: str) -> None:
        """The reconciler went over the unfinished requests: ``complete`` or ``amazon_unavailable``."""
        self.reconciler_passes.labels(result).inc()

    def outage_began(self, source: str, code: str) -> None:
        """An outage someone must fix began (the outage board calls this once per episode)."""
        self.outage_episodes.labels(outcome_label(source), outcome_label(code)).inc()

    def observe_slack(self, method: str, outcome: str) -> None:
        """One call to Slack's Web API (slack_sdk's own retries inside it included)."""
        self.slack_calls.labels(_name_label(method), outcome_label(outcome)).inc()

    def render(
        self,
        *,
        cases: Mapping[tuple[str, str], int],
        open_cases: int,
        overdue_cases: int,
        backlog: Mapping[str, float | int | None],
        writes_failing: bool = False,
        wal_bytes: int = 0,
        checkpoints_failing: bool = False,
        outages: Iterable[tuple[str, str]] = (),
        socket_connected: bool | None = None,
        leading: bool = True,
    ) -> bytes:
        """The exposition text, with the database's numbers of this moment."""
        self.cases.clear()  # a status with no case left disappears rather than keeping its last count
        for (kind, status), count in cases.items():
            self.cases.labels(kind, status).set(count)
        self.cases_open.set(open_cases)
        self.cases_overdue.set(overdue_cases)
        self.requests_unfinished.set(backlog.get("requests_unfinished") or 0)
        self.inbox_pending.set(backlog.get("inbox_pending") or 0)
        self.outbox_pending.set(backlog.get("outbox_pending") or 0)
        self.outbox_oldest_age.set(backlog.get("outbox_oldest_age_seconds") or 0)
        self.outbox_abandoned.set(backlog.get("outbox_abandoned") or 0)
        self.database_writes_failing.set(1 if writes_failing else 0)
        self.wal_bytes.set(wal_bytes)
        self.wal_checkpoints_failing.set(1 if checkpoints_failing else 0)
        self.leader.set(1 if leading else 0)
        self.outage_active.clear()  # an outage that ended disappears
        for source, code in outages:
            self.outage_active.labels(outcome_label(source), outcome_label(code)).set(1)
        if self.slack_socket_connected is not None and socket_connected is not None:
            self.slack_socket_connected.set(1 if socket_connected else 0)
        return generate_latest(self.registry)
