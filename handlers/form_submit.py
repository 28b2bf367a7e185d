"""The new-request form, submitted: read like the command, and started the command's way.

The form is checked before its submission is acknowledged: a refusal goes beside its field and nothing is
saved. A valid form becomes the command's own ``Start`` and takes the command's path from there (who may
ask, the store, the thread, the start at Amazon, a refusal when the bot is not in the channel). Refusals
after that reach the sender through the command's response_url, or the one Slack sends for the picked channel.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from handlers import texts
from handlers.commands import Start, decide_then_request
from handlers.deadlines import DeadlineSpec
from handlers.desk import Desk
from handlers.emails import parse_email
from handlers.guard import clicked_by, ephemeral_reply, saving
from handlers.intake import Intake, Refused, read_received, read_ref, read_verified, read_via
from handlers.kinds import KindFlow
from handlers.lifecycle import Reply
from handlers.texts import form
from handlers.texts import intake as words
from handlers.texts.intake import LAW_NONE

__all__ = ["read_form", "submit_form"]

logger = logging.getLogger(__name__)

_DIRECT = "D"  # a direct message's conversation id starts so; a thread needs a channel


def _values(view: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each field's state by its name (block and action ids are the same)."""
    state = (view.get("state") or {}).get("values") or {}
    return {block: dict(actions.get(block) or {}) for block, actions in state.items()}


def _chosen(field: Mapping[str, Any]) -> str:
    option = field.get("selected_option") or {}
    return str(option.get("value") or "")


def read_form(
    view: Mapping[str, Any], kinds: Mapping[str, KindFlow], *, now: float
) -> tuple[Start, str] | dict[str, str]:
    """The form's fields as the command's ``Start`` and the channel for its thread, or the refusals by field."""
    values = _values(view)
    errors: dict[str, str] = {}
    kind = kinds.get(_chosen(values.get(form.FIELD_KIND, {})))
    if kind is None:
        errors[form.FIELD_KIND] = "Choose the kind of request."
    typed_email = str(values.get(form.FIELD_EMAIL, {}).get("value") or "")
    email = parse_email(typed_email)
    if email is None:
        errors[form.FIELD_EMAIL] = words.not_an_email(typed_email)
    received = read_received(str(values.get(form.FIELD_RECEIVED, {}).get("selected_date") or ""), now=now)
    via_typed = _chosen(values.get(form.FIELD_VIA, {}))
    via = read_via(via_typed) if via_typed else None
    ref_typed = str(values.get(form.FIELD_REF, {}).get("value") or "").strip()
    ref = read_ref(ref_typed) if ref_typed else None
    verified_typed = _chosen(values.get(form.FIELD_VERIFIED, {}))
    verified = read_verified(verified_typed) if verified_typed else None
    fields = (
        (form.FIELD_RECEIVED, received),
        (form.FIELD_VIA, via),
        (form.FIELD_REF, ref),
        (form.FIELD_VERIFIED, verified),
    )
    for name, read in fields:
        if isinstance(read, Refused):
            errors[name] = read.words
    law = _chosen(values.get(form.FIELD_LAW, {})) or LAW_NONE
    params = _kind_params(values, kinds, chosen=kind, errors=errors)
    channel = _channel(view, values, errors)
    if errors or kind is None or email is None or isinstance(received, Refused):
        return errors
    intake = Intake(
        received_on=received,
        via=None if isinstance(via, Refused) else via,
        outside_ref=None if isinstance(ref, Refused) else ref,
        verified_how=None if isinstance(verified, Refused) else verified,
    )
    deadline = DeadlineSpec(jurisdiction=None if law == LAW_NONE else law)
    return Start(email, kind=kind.kind, deadline=deadline, params=params, intake=intake), channel


def _kind_params(
    values: Mapping[str, Mapping[str, Any]],
    kinds: Mapping[str, KindFlow],
    *,
    chosen: KindFlow | None,
    errors: dict[str, str],
) -> dict[str, str]:
    """The chosen kind's own fields, each read by the kind's ``options`` as the command reads it; another
    kind's fields must be empty."""
    params: dict[str, str] = {}
    for kind in kinds.values():
        for field in kind.form_fields:
            name = form.field_id(kind, field)
            typed = str(values.get(name, {}).get("value") or "").split()
            if not typed:
                continue
            if chosen is None or kind.kind != chosen.kind:
                errors[name] = words.kind_field_not_for(kind.texts.noun)
                continue
            read = kind.options([field.flag, *typed])
            if isinstance(read, str):
                errors[name] = read
            elif read[1]:  # a word the option did not take (a second number after --hold)
                errors[name] = words.one_value_only()
            else:
                params.update(read[0])
    return params


def _channel(view: Mapping[str, Any], values: Mapping[str, Mapping[str, Any]], errors: dict[str, str]) -> str:
    """The channel the command was typed in (carried in the metadata), or the one picked in the form."""
    channel = str(_metadata(view).get("channel") or "")
    if channel:
        return channel
    picked = str(values.get(form.FIELD_CHANNEL, {}).get("selected_conversation") or "")
    if not picked or picked.startswith(_DIRECT):
        errors[form.FIELD_CHANNEL] = words.channel_needed()
    return picked


def _metadata(view: Mapping[str, Any]) -> dict[str, Any]:
    try:
        metadata = json.loads(str(view.get("private_metadata") or "{}"))
    except ValueError:
        return {}
    return metadata if isinstance(metadata, dict) else {}


async def submit_form(deps: Desk, *, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
    """A submitted form: refusals beside their fields (nothing saved), or the request started as the command would."""
    read = read_form(view, deps.flow.kinds, now=deps.flow.clock())
    if isinstance(read, dict):
        await ack(response_action="errors", errors=read)
        return
    await ack()
    intent, channel = read
    user = clicked_by(deps, body)
    reply = _reply(deps, body, view, user=user, channel=channel)
    deps.background.spawn(
        saving(decide_then_request(deps, intent, user=user, channel=channel, reply=reply), reply=reply),
        name="form request",
    )


def _reply(deps: Desk, body: Mapping[str, Any], view: Mapping[str, Any], *, user: str, channel: str) -> Reply:
    """How the person who sent the form is answered alone: the command's response_url, or the one Slack sent
    for the picked channel, like a command's answers (they reach a channel the bot is not in); else an
    ephemeral message in the channel."""
    urls = [str(u.get("response_url") or "") for u in body.get("response_urls") or [] if isinstance(u, dict)]
    url = str(_metadata(view).get("response_url") or "") or next((u for u in urls if u), "")
    if url:
        return ephemeral_reply(AsyncRespond(response_url=url))

    async def reply(message: texts.Message) -> None:
        try:
            await deps.slack.chat_postEphemeral(channel=channel, user=user, **message)
        except (SlackApiError, OSError, TimeoutError) as error:
            logger.info("could not answer %s in %s (%s)", user, channel, type(error).__name__)

    return reply
