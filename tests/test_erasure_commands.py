"""How staff ask for an erasure: `delete` with --hold and --reason in any order, mistakes answered in the
acknowledgement, and DELETION_HOLD_DAYS read and checked like every setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from harness import Harness, ack_text
from processes import clean_env

from bot.settings import load_settings
from core import ConfigError, RequestKind
from handlers.commands import Invalid, Start, parse_command
from handlers.kinds.registry import KINDS

EMAIL = "jane@example.com"
HTTP_MODE = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_SIGNING_SECRET": "secret",
    "BWP_CLIENT_ID": "amzn1.application-oa2-client.test",
    "BWP_CLIENT_SECRET": "bwp-client-secret",
    "BWP_TARGET_ID": "amzn1.bp.test",
    "ALLOWED_USERS": "*",
}


def _start(text: str) -> Start:
    intent = parse_command(text, KINDS)
    assert isinstance(intent, Start), intent
    return intent


def test_delete_reads_hold_reason_and_deadline_in_any_order() -> None:
    """--hold (with or without "d", 0 allowed) and a deadline go anywhere before --reason; every word after
    --reason is the reason, even one that starts with --."""
    intent = _start(f"delete --hold 30d {EMAIL} gdpr --reason shopper asked --by  email")
    assert intent.kind == RequestKind.ERASURE and intent.email == EMAIL
    assert dict(intent.params) == {"hold_days": "30", "reason": "shopper asked --by email"}
    assert intent.deadline.jurisdiction == "gdpr"
    assert dict(_start(f"DELETE {EMAIL} --deadline 45d --hold 0").params) == {"hold_days": "0"}
    assert _start(f"delete {EMAIL} --hold 180").params["hold_days"] == "180"
    assert dict(_start(f"delete {EMAIL}").params) == {}  # the hold comes from DELETION_HOLD_DAYS when stored
    assert _start(EMAIL).kind == RequestKind.RETRIEVAL


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (f"delete {EMAIL} --hold 181d", "`--hold` takes a number of days from 0 to 180"),
        (f"delete {EMAIL} --hold soon", "`--hold` takes a number of days from 0 to 180"),
        (f"delete {EMAIL} --hold", "`--hold` takes a number of days from 0 to 180"),
        (f"delete {EMAIL} --reason", "`--reason` needs the words after it"),
        (f"delete {EMAIL} --reason asked by {EMAIL}", "without the shopper's email"),
        (f"delete {EMAIL} --reason " + "x" * 501, "at most 500 characters"),
        (f"delete {EMAIL} --hold ٣d", "`--hold` takes a number of days from 0 to 180"),
        (f"delete {EMAIL} --hold ３０", "`--hold` takes a number of days from 0 to 180"),
        (f"delete {EMAIL} --deadline ٣٠d", "`--deadline` takes a number of days"),
        (f"delete {EMAIL} --reason asked by jane＠example.com", "without the shopper's email"),
        (f"delete {EMAIL} --reason asked by jane @ example.com", "without the shopper's email"),
        (f"delete {EMAIL} --reason asked by jane\u200b@example．com", "without the shopper's email"),
        (f"delete {EMAIL} --new", "An erasure is never started twice"),
        ("delete", "one shopper email"),
        (f"delete {EMAIL} other@example.com", "one shopper email"),
    ],
)
def test_a_bad_delete_is_refused_with_what_to_fix(text: str, said: str) -> None:
    """Each mistake is a usage answer naming what to fix."""
    intent = parse_command(text, KINDS)
    assert isinstance(intent, Invalid), intent
    assert said in str(intent.message["text"])


async def test_a_bad_delete_is_answered_with_an_erasure_example_not_a_retrieval(bot: Harness) -> None:
    """Over HTTP: every mistake in a `delete` ends with how to ask for an erasure; other scripts' digits and an
    email written with a full-width or spaced @ are refused like their plain forms; nothing is stored."""
    for text, said in [
        (f"delete {EMAIL} --reason mail bob@example.com", "without the shopper's email"),
        (f"delete {EMAIL} --reason mail bob＠example.com", "without the shopper's email"),
        (f"delete {EMAIL} --reason mail bob @ example.com", "without the shopper's email"),
        (f"delete {EMAIL} --hold ٣d", "from 0 to 180"),
        (f"delete {EMAIL} --colour red", "I don't know the option"),
        ("delete not-an-email", "is not an email address"),
    ]:
        response = await bot.slash(text)
        answer = ack_text(response)
        assert response.status_code == 200 and said in answer, (text, answer)
        assert "Try `/data-request delete jane@example.com`" in answer, (text, answer)
    response = await bot.slash("not-an-email")
    assert "Try `/data-request jane@example.com`" in ack_text(response)
    assert bot.parents() == [] and await bot.runtime.store.cases.open() == []


async def test_a_bad_delete_is_answered_in_the_acknowledgement_and_nothing_is_stored(bot: Harness) -> None:
    """Over HTTP: the refusal is the acknowledgement itself (no thread, no audit entry, nothing stored)."""
    response = await bot.slash(f"delete {EMAIL} --hold 200d --reason why not")
    assert response.status_code == 200 and "from 0 to 180" in ack_text(response)
    assert bot.parents() == [] and await bot.runtime.store.cases.open() == []
    assert await bot.runtime.store.audit.entries() == []


def test_deletion_hold_days_is_read_and_checked() -> None:
    """Unset it is 10 (Amazon's default); 0 and 180 are allowed; anything else is one problem naming the
    setting and its range."""
    assert load_settings(HTTP_MODE).deletion_hold_days == 10
    assert load_settings({**HTTP_MODE, "DELETION_HOLD_DAYS": "0"}).deletion_hold_days == 0
    assert load_settings({**HTTP_MODE, "DELETION_HOLD_DAYS": "180"}).deletion_hold_days == 180
    for wrong in ("181", "-1", "ten", "10d"):
        with pytest.raises(ConfigError) as raised:
            load_settings({**HTTP_MODE, "DELETION_HOLD_DAYS": wrong})
        assert str(raised.value).splitlines() == [
            "DELETION_HOLD_DAYS must be a whole number of days between 0 and 180: set it in that range, or unset it "
            "for the default (10)"
        ]


def test_serve_with_a_bad_deletion_hold_days_exits_2_with_one_line(tmp_path: Path) -> None:
    """A real process: DELETION_HOLD_DAYS=200 stops `serve` with exit 2 and one line naming it, no traceback."""
    env = {**clean_env(), **HTTP_MODE, "DELETION_HOLD_DAYS": "200", "DATABASE_PATH": str(tmp_path / "r.db")}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "DELETION_HOLD_DAYS" in lines[0] and "between 0 and 180" in lines[0]
