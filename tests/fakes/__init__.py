"""Loopback fakes of Slack and Buy with Prime, and Slack-signed request builders.

Real HTTP servers on 127.0.0.1 (ports the OS picks), so the bot runs its real
clients against them; nothing reaches the internet and nothing sleeps to wait.
"""

from __future__ import annotations

from .prime import FakePrime, Task, amazon_error
from .signing import block_actions_body, shortcut_body, slack_headers, slash_body, view_submission_body
from .slack import BOT_ID, BOT_USER, TEAM_ID, Call, FakeSlack, ResponsePost, block_problems, buttons, text_of

__all__ = [
    "BOT_ID",
    "BOT_USER",
    "TEAM_ID",
    "Call",
    "FakePrime",
    "FakeSlack",
    "ResponsePost",
    "Task",
    "amazon_error",
    "block_actions_body",
    "block_problems",
    "buttons",
    "shortcut_body",
    "slack_headers",
    "slash_body",
    "text_of",
    "view_submission_body",
]
