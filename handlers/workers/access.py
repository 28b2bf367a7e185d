"""Who may request, ask status and download: checked at the time of each action.

Closed by default: with no list, no group and no explicit ``everyone``, nobody may.

``ALLOWED_USERS`` is a fixed list; ``ALLOWED_USERGROUP`` is read from Slack in
the background (every ``ttl`` seconds, and at once when the list is older),
and every decision uses the last list Slack gave: a decision never waits on the
network, so a slow or failing ``usergroups.users.list`` never delays an
acknowledgement. Only before Slack has named the members once is there no
list; then ``known`` says so (None) and the caller answers first and decides
after, with ``check``. When Slack cannot say who is in the group and no list
is known, the answer is "no" (fail closed), with a reason the user can pass on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack_errors import slack_error_code

__all__ = ["Authorizer", "Decision"]

logger = logging.getLogger(__name__)

NO_GROUP_LIST = "I could not read the allowed user group from Slack just now"


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a user may act, and if not, why (shown to them)."""

    allowed: bool
    reason: str = ""


class Authorizer:
    """Answers "may this user handle shopper data?" from the allow-list and the user group's last known members."""

    def __init__(
        self,
        *,
        allowed_users: frozenset[str],
        usergroup: str | None,
        everyone: bool = False,
        slack: AsyncWebClient,
        ttl: float = 60.0,
        retry_after: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allowed_users = allowed_users
        self._usergroup = usergroup
        self._everyone = everyone
        self._slack = slack
        self._ttl = ttl
        self._retry_after = min(retry_after, ttl)
        self._clock = clock
        self._members: frozenset[str] | None = None
        self._next_read = 0.0  # when the list should be read again
        self._reading: asyncio.Task[None] | None = None  # held here: asyncio keeps only weak references
        self._failing = False

    @property
    def everyone_allowed(self) -> bool:
        """Every workspace member may act (``ALLOWED_USERS=*``, or the sandbox without a list)."""
        return self._everyone

    def known(self, user_id: str) -> Decision | None:
        """Decide now, without waiting: None only while no member list of the group has been read yet."""
        if self.everyone_allowed or user_id in self._allowed_users:
            return Decision(True)
        if self._usergroup is None:
            return Decision(False)
        if self._clock() >= self._next_read:
            self._read_in_background()
        if self._members is None:
            return None
        return Decision(user_id in self._members)

    async def check(self, user_id: str) -> Decision:
        """Decide for ``user_id``: from what is known, else after the group's first read (never before an ack)."""
        decision = self.known(user_id)
        if decision is not None:
            return decision
        await asyncio.shield(self._read_in_background())
        return self.known(user_id) or Decision(False, NO_GROUP_LIST)

    async def run(self) -> None:
        """Keep the member list fresh: read it now and every ``ttl`` seconds (sooner again after a failure)."""
        if self._usergroup is None:
            return
        while True:
            await asyncio.shield(self._read_in_background())
            await asyncio.sleep(max(0.0, self._next_read - self._clock()))

    def _read_in_background(self) -> asyncio.Task[None]:
        """The read under way, or a new one: one at a time, whoever asks."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read(), name="usergroup read")
        return self._reading

    async def _read(self) -> None:
        assert self._usergroup is not None
        try:
            response = await self._slack.usergroups_users_list(usergroup=self._usergroup)
        except SlackApiError as error:
            self._failed(f"{slack_error_code(error)} (does the app have usergroups:read?)")
            return
        except (TimeoutError, OSError, aiohttp.ClientError) as error:
            self._failed(f"Slack unreachable ({type(error).__name__})")
            return
        self._members = frozenset(response.get("users") or ())
        self._next_read = self._clock() + self._ttl
        if self._failing:
            logger.info("ALLOWED_USERGROUP %s read again from Slack", self._usergroup)
        self._failing = False

    def _failed(self, why: str) -> None:
        self._next_read = self._clock() + self._retry_after
        if not self._failing:  # once per episode; the last known list stays in use meanwhile
            logger.warning(
                "cannot read ALLOWED_USERGROUP %s: %s; %s",
                self._usergroup,
                why,
                "using the last list Slack gave" if self._members is not None else "its members are refused until then",
            )
        self._failing = True

    async def close(self) -> None:
        """Stop a read under way (at shutdown)."""
        if self._reading is not None and not self._reading.done():
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)
