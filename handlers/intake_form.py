"""The new-request form, opened: by a bare ``/data-request`` (in its channel) or the "New data request" shortcut.

The form opened from the command carries the command's channel and response_url in its metadata; one opened
from the shortcut (which has no channel) asks for one. ``handlers/form_submit.py`` reads what comes back.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError

from handlers.desk import Desk
from handlers.slack_errors import slack_error_code
from handlers.texts import form

__all__ = ["NEW_REQUEST_SHORTCUT", "on_shortcut", "open_form"]

logger = logging.getLogger(__name__)

NEW_REQUEST_SHORTCUT = "new_data_request"  # the global shortcut's callback id (manifest.yml)


async def open_form(deps: Desk, *, trigger_id: str, channel: str | None, response_url: str | None) -> bool:
    """Open the form for ``trigger_id`` (which lives 3 seconds); ``channel``: where it was asked (None: it asks).

    False when Slack did not open it (logged).
    """
    metadata = {"channel": channel, "response_url": response_url or ""} if channel else {}
    today = datetime.fromtimestamp(deps.flow.clock(), UTC).date()
    view = form.request_form(
        list(deps.flow.kinds.values()), today=today, metadata=metadata, pick_channel=channel is None
    )
    try:
        await deps.slack.views_open(trigger_id=trigger_id, view=view)
    except (SlackApiError, OSError, TimeoutError) as error:
        code = slack_error_code(error) if isinstance(error, SlackApiError) else type(error).__name__
        logger.warning("the new-request form did not open (%s)", code)
        return False
    return True


async def on_shortcut(deps: Desk, *, ack: AsyncAck, body: dict[str, Any]) -> None:
    """The "New data request" shortcut: the form, with a channel picker (who may ask is decided at submission)."""
    await ack()
    await open_form(deps, trigger_id=str(body.get("trigger_id") or ""), channel=None, response_url=None)
