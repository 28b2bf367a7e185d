"""The Download button: a fresh pre-signed link, asked for at click time, shown to the clicker alone.

Not for a denied case, and (IDENTITY_VERIFICATION=required) not before the shopper's identity is recorded as
verified: the refusal says how to record it.

The link is never stored and never logged; it lives only in the ephemeral
message. Who was shown a link, and when, goes to the audit log first.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from core import PrimeError, RequestKind
from handlers import texts
from handlers.desk import Desk
from handlers.guard import Clicked, request_button
from handlers.kinds.retrieval import texts as words
from handlers.lifecycle import Reply, apply_task_state, kind_of
from handlers.record.rules import denied, unverified
from handlers.slack_errors import slack_error_code
from handlers.texts import record

__all__ = ["handle_download"]

logger = logging.getLogger(__name__)


def _in_thread(deps: Desk, body: dict[str, Any], respond: AsyncRespond, user: str) -> Reply:
    """Answer the clicker alone in the thread they clicked in (the link stays beside its case), else through
    the response_url."""
    channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
    thread_ts = (body.get("container") or {}).get("thread_ts") or (body.get("message") or {}).get("thread_ts")

    async def reply(message: texts.Message) -> None:
        await _ephemeral(deps, respond, channel=channel, user=user, thread_ts=thread_ts, message=message)

    return reply


@request_button(action="download", name="download", kind=RequestKind.RETRIEVAL, answer=_in_thread)
async def handle_download(deps: Desk, click: Clicked) -> None:
    """**Download**: once the clicker may act, ask Amazon for the task now and show its link to them alone."""
    request, user, reply = click.request, click.user, click.reply
    kind = kind_of(deps.flow, request)
    if kind is None or not request.task_id:
        await reply(texts.unknown_request("this button"))
        return
    if denied(request):
        await reply(record.nothing_to_download(request))
        return
    if unverified(request, required=deps.verification_required):
        await deps.flow.store.audit.append(
            request_id=request.id, actor=user, action="refused", detail="download: identity not verified"
        )
        await reply(record.download_unverified(request))
        return
    try:
        state = await deps.flow.prime.task(kind.operations, request.task_id)
    except PrimeError as error:
        logger.warning("request %s: no link from Buy with Prime (%s)", request.id, error.kind)
        await reply(words.download_failed())
        return
    request = await apply_task_state(deps.flow, request, state)  # Amazon's word now: even a completed task can fail
    if state.status != "COMPLETED" or not state.link or state.link_expires_at is None:
        await reply(words.not_ready(request, state.status))
        return
    await deps.flow.store.audit.append(
        request_id=request.id, actor=user, action="link shown", detail=f"task {request.task_id}"
    )
    logger.info("request %s: download link shown to %s", request.id, user)
    await reply(words.link_message(state.link, state.link_expires_at))


async def _ephemeral(
    deps: Desk, respond: AsyncRespond, *, channel: str, user: str, thread_ts: str | None, message: texts.Message
) -> None:
    """Show ``message`` to ``user`` alone: in the thread if the bot can, else through the response_url."""
    try:
        await deps.slack.chat_postEphemeral(
            channel=channel,
            user=user,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            **message,
        )
        return
    except SlackApiError as error:
        logger.info("ephemeral message refused (%s); answering through response_url", slack_error_code(error))
    except (OSError, TimeoutError) as error:
        logger.info("ephemeral message failed (%s); answering through response_url", type(error).__name__)
    try:
        await respond(response_type="ephemeral", replace_original=False, **message)
    except Exception as error:  # nothing is left to tell the user through
        logger.warning("could not answer the click through response_url: %s", type(error).__name__)
