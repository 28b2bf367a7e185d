"""``/data-request`` over HTTP, answered without Bolt's dispatch: acknowledging it is what a burst waits on.

For each request Bolt runs its whole middleware chain, builds a Web API client and walks its listeners;
on a busy bot the acknowledgements queue behind each other's share of that. For the one slash command
the bot has, the route does what Bolt does for it, in Bolt's order and with Bolt's own pieces:

1. a body that is not a form of this command (JSON, a ``payload`` form, another command, Slack's
   ``ssl_check``) goes to Bolt as before;
2. Slack's signature, checked by slack_sdk's ``SignatureVerifier`` as Bolt's request verification
   checks it (five minutes either way, a constant-time compare); a request it refuses goes to Bolt too,
   which refuses it (401) and logs it as it always has;
3. the listener Bolt has for the command (``handlers.register.command_listener``), given Bolt's
   ``AsyncAck`` and ``AsyncRespond``: its acknowledgement is the answer, a 500 if it raised.

Socket Mode never comes here: its commands arrive through Bolt.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import parse_qsl

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from handlers.register import CommandListener

__all__ = ["FORM", "SlashCommand"]

logger = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"  # how Slack sends a slash command


class SlashCommand:
    """One slash command, verified and answered as Bolt would, by the listener Bolt has for it."""

    def __init__(self, *, signing_secret: str, command: str, listener: CommandListener, slack: AsyncWebClient) -> None:
        self._verifier = SignatureVerifier(signing_secret)
        self._command = command
        self._listener = listener
        self._proxy, self._ssl = slack.proxy, slack.ssl  # what Bolt's respond() takes from the client

    def fields(self, body: str, *, content_type: str, headers: Mapping[str, str]) -> dict[str, str] | None:
        """The command's fields when ``body`` is this command, signed by Slack; None: Bolt's to answer."""
        if content_type != FORM or "payload" in body:  # Bolt reads a body with "payload" in it as JSON
            return None
        fields = dict(parse_qsl(body, keep_blank_values=True))  # as Bolt parses a form
        if fields.get("command") != self._command or fields.get("ssl_check") == "1":
            return None
        timestamp = headers.get("X-Slack-Request-Timestamp", "0")
        signature = headers.get("X-Slack-Signature", "")
        return fields if self._verifier.is_valid(body, timestamp, signature) else None

    async def answer(self, fields: dict[str, str]) -> BoltResponse:
        """The listener's acknowledgement; a 500 when it raised, as Bolt answers then."""
        ack = AsyncAck()  # type: ignore[no-untyped-call]
        respond = AsyncRespond(response_url=fields.get("response_url"), proxy=self._proxy, ssl=self._ssl)
        try:
            await self._listener(ack, fields, respond)
        except Exception:
            logger.exception("slack: the %s listener failed", self._command)
            return BoltResponse(status=500, body="")
        return ack.response or BoltResponse(status=404, body={"error": "unhandled request"})
