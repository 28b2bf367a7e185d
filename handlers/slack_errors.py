"""Every Slack error code, sorted once into what the bot does about it.

Three kinds, one table (DESIGN.md, "What fails, and who fixes it"):

- ``RETRY``: Slack is busy or down (429, 5xx, timeouts, ``internal_error``): retry
  with backoff, quietly.
- ``OPERATOR``: someone must act (a revoked token, a missing scope, the bot removed
  from the channel, an archived channel). Keep the work and keep retrying with
  capped backoff; log one line per episode; ``/readyz`` and ``/metrics`` show it.
- ``MESSAGE``: this message itself is wrong (``invalid_blocks``, ``msg_too_long``…).
  Another try cannot help: give up on it, audit it, and tell the requester.

A code the table does not know is treated as ``OPERATOR``: kept and retried, and
shown to whoever runs the bot, rather than lost or silently repeated forever.
"""

from __future__ import annotations

from enum import Enum

from slack_sdk.errors import SlackApiError

__all__ = ["NOT_A_MEMBER", "SlackFault", "classify", "operator_hint", "slack_error_code"]


class SlackFault(Enum):
    """What a Slack error means for the call that got it."""

    RETRY = "retry"
    OPERATOR = "operator"
    MESSAGE = "message"


_RETRY = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "timeout",
        "team_added_to_org",  # Slack is migrating the workspace; it answers again shortly
    }
)
# The bot cannot post in the channel until someone invites it there (a person to tell: "invite me").
NOT_A_MEMBER = frozenset({"not_in_channel", "channel_not_found"})
# code -> what the operator should do, in a few words (logged once per episode, shown in /readyz)
_OPERATOR = {
    "invalid_auth": "the bot token is not valid: copy the Bot User OAuth Token into SLACK_BOT_TOKEN",
    "not_authed": "no bot token was sent: set SLACK_BOT_TOKEN",
    "token_revoked": "the bot token was revoked: reinstall the app and update SLACK_BOT_TOKEN",
    "token_expired": "the bot token expired: reinstall the app or turn off token rotation",
    "account_inactive": "the app was uninstalled or its account deactivated: reinstall it",
    "missing_scope": "the app lacks a scope it needs: add it in the manifest and reinstall",
    "no_permission": "the app lacks a permission it needs: check its scopes and reinstall",
    "not_allowed_token_type": "SLACK_BOT_TOKEN is not a bot token (xoxb-…)",
    "ekm_access_denied": "the workspace's encryption keys deny access: ask the Slack admin",
    "team_access_not_granted": "the app is not granted access to this workspace: ask the Slack admin",
    "access_denied": "Slack denies the app this action: ask the Slack admin",
    "org_login_required": "the workspace needs an admin to log in to Slack: ask the Slack admin",
    "not_in_channel": "the bot was removed from a channel it posts in: /invite @data-request there",
    "channel_not_found": "a channel the bot posts in is gone or private to it: invite the bot, or restore it",
    "is_archived": "a channel the bot posts in is archived: unarchive it",
    "restricted_action": "the channel or workspace does not let the bot post: ask the Slack admin",
    "restricted_action_read_only_channel": "the channel is read-only for the bot: ask the Slack admin",
    "restricted_action_thread_only_channel": "the channel only allows thread replies: ask the Slack admin",
    "restricted_action_non_threadable_channel": "the channel allows no threads: ask the Slack admin",
    "team_not_found": "the workspace cannot be found: check SLACK_API_URL and the token",
    "invalid_token": "the bot token is malformed: copy it again into SLACK_BOT_TOKEN",
}
_MESSAGE = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "no_text",
        "too_many_attachments",
        "invalid_attachments",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "metadata_must_be_sent_from_app",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "invalid_arguments",
        "invalid_arg_name",
        "invalid_array_arg",
        "invalid_charset",
        "invalid_form_data",
        "invalid_post_type",
        "missing_post_type",
        "invalid_json",
        "json_not_object",
        "duplicate_message_not_found",
        "user_not_found",  # a DM to someone no longer in the workspace
        "user_not_in_channel",
        "channel_type_not_supported",
    }
)


def classify(code: str) -> SlackFault:
    """The kind of a Slack error code (``invalid_auth``) or HTTP stand-in (``HTTP 503``)."""
    if code in _RETRY or code == "HTTP 429" or (code.startswith("HTTP 5") and len(code) == 8):
        return SlackFault.RETRY
    if code in _MESSAGE:
        return SlackFault.MESSAGE
    return SlackFault.OPERATOR


def operator_hint(code: str) -> str:
    """What the operator should do about an ``OPERATOR`` code, in a few words."""
    return _OPERATOR.get(code, f"Slack refuses the bot's calls with {code!r}: see Slack's documentation of that error")


def slack_error_code(error: SlackApiError) -> str:
    """Slack's error code (``not_in_channel``, …), or ``HTTP <status>`` when the body was not Slack's JSON."""
    data = error.response.data
    code = data.get("error") if isinstance(data, dict) else None
    return str(code) if code else f"HTTP {error.response.status_code}"
