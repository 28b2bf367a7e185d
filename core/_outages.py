"""What is failing now, for the operator: one in-process board read by /readyz and /metrics.

An *episode* is one stretch of time during which one outside party keeps
refusing the bot for one reason someone must fix (Slack: ``invalid_auth``,
``not_in_channel``…; Buy with Prime: credentials refused, access denied, a
gateway answering instead of Amazon). The board logs one line when an episode
begins and one when it ends, however many calls fail in between, and counts
episodes per source and code so ``/metrics`` can export them.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Episode", "Outages"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Episode:
    """One outage in progress: who refuses (``source``), why (``code``), since when, how often so far."""

    source: str  # "slack" or "buy_with_prime"
    code: str
    detail: str
    since: float
    failures: int = 1


class Outages:
    """The episodes in progress, keyed by (source, code); safe to call from any task (single event loop)."""

    def __init__(
        self, *, clock: Callable[[], float] = time.time, on_begin: Callable[[str, str], None] | None = None
    ) -> None:
        self._clock = clock
        self._on_begin = on_begin  # the metrics layer's counter of episodes
        self._active: dict[tuple[str, str], Episode] = {}
        self.episodes_total: Counter[tuple[str, str]] = Counter()  # episodes begun, by (source, code)

    def failing(self, source: str, code: str, detail: str = "") -> bool:
        """A call failed for a reason someone must fix; True (and one log line) when this begins an episode."""
        episode = self._active.get((source, code))
        if episode is not None:
            episode.failures += 1
            return False
        self._active[(source, code)] = Episode(source, code, detail, self._clock())
        self.episodes_total[(source, code)] += 1
        if self._on_begin is not None:
            self._on_begin(source, code)
        logger.error("%s refuses the bot (%s): %s. Retrying with backoff until it is fixed.", source, code, detail)
        return True

    def recovered(self, source: str, code: str | None = None) -> None:
        """Calls to ``source`` work again (for ``code`` alone, or for every code): end those episodes."""
        for key in [k for k in self._active if k[0] == source and code in (None, k[1])]:
            episode = self._active.pop(key)
            lasted = self._clock() - episode.since
            logger.warning(
                "%s accepts the bot's calls again (%s ended after %.0f s, %d failed calls)",
                source,
                episode.code,
                lasted,
                episode.failures,
            )

    def active(self) -> list[Episode]:
        """The episodes in progress, oldest first."""
        return sorted(self._active.values(), key=lambda e: e.since)

    def keys(self) -> list[tuple[str, str]]:
        """(source, code) of each episode in progress: the labels of the metrics layer's gauge."""
        return [(e.source, e.code) for e in self.active()]

    def snapshot(self) -> list[dict[str, object]]:
        """The episodes in progress as JSON for /readyz: no personal data, only codes and ages."""
        now = self._clock()
        return [
            {
                "source": e.source,
                "code": e.code,
                "what": e.detail,
                "since_seconds": round(now - e.since, 3),
                "failed_calls": e.failures,
            }
            for e in self.active()
        ]
