"""Who may request, ask status and download: checked at the time of each action.

Closed by default: with no list, no group and no explicit ``everyone``, nobody may.

``ALLOWED_USERS`` is a fixed list; ``ALLOWED_USERGROUP`` is read from Slack and
cached briefly, so a person removed from the group loses access within a minute
without the bot asking Slack at every click. When Slack cannot say who is in
the group, the answer is "no" (fail closed), with a reason the user can pass on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import slack_error_code

__all__ = ["Authorizer", "Decision"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a user may act, and if not, why (shown to them)."""

    allowed: bool
    reason: str = ""


class Authorizer:
    """Answers "may this user handle shopper data?" from the allow-list and the user group."""

    def __init__(
        self,
        *,
        allowed_users: frozenset[str],
        usergroup: str | None,
        everyone: bool = False,
        slack: AsyncWebClient,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allowed_users = allowed_users
        self._usergroup = usergroup
        self._everyone = everyone
        self._slack = slack
        self._ttl = ttl
        self._clock = clock
        self._members: frozenset[str] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def everyone_allowed(self) -> bool:
        """Every workspace member may act (``ALLOWED_USERS=*``, or the sandbox without a list)."""
        return self._everyone

    async def check(self, user_id: str) -> Decision:
        """Decide for ``user_id`` now."""
        if self.everyone_allowed or user_id in self._allowed_users:
            return Decision(True)
        if self._usergroup is None:
            return Decision(False)
        members = await self._group_members()
        if members is None:
            return Decision(False, "I could not read the allowed user group from Slack just now")
        return Decision(user_id in members)

    async def _group_members(self) -> frozenset[str] | None:
        assert self._usergroup is not None
        if self._members is not None and self._clock() - self._fetched_at < self._ttl:
            return self._members
        async with self._lock:
            if self._members is not None and self._clock() - self._fetched_at < self._ttl:
                return self._members
            try:
                response = await self._slack.usergroups_users_list(usergroup=self._usergroup)
            except SlackApiError as error:
                logger.warning(
                    "cannot read ALLOWED_USERGROUP %s: %s (does the app have usergroups:read?)",
                    self._usergroup,
                    slack_error_code(error),
                )
                return None
            except (TimeoutError, OSError) as error:
                logger.warning("cannot reach Slack to read ALLOWED_USERGROUP: %s", type(error).__name__)
                return None
            self._members = frozenset(response.get("users") or ())
            self._fetched_at = self._clock()
            return self._members
