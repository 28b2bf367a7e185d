"""The shopper's identity verified as a recorded step: who, how and when, audited and shown in the thread; with
IDENTITY_VERIFICATION=required, Download and an erasure's Approve wait for it and say how to record it."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from erasures import APPROVE_ACTION, ask, latest, request_of, with_button
from fakes import buttons, text_of
from harness import Harness, ack_text, envelope, running_bot
from processes import Fakes, run_bot

from bot.settings import load_settings
from core import ConfigError
from handlers.buttons import VERIFY_ACTION
from handlers.kinds.retrieval.rules import DOWNLOAD_ACTION

ON_BOTH_BACKENDS = True  # each ``bot`` test runs on SQLite and on PostgreSQL (tests/conftest.py)

COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"
EMAIL = "jane.doe@example.com"


async def ready(bot: Harness, email: str = EMAIL) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A retrieval whose task completed: (task id, the thread's first message, the reply with Download)."""
    task_id, parent = await bot.request(email)
    bot.prime.complete(task_id)
    await bot.relay(envelope(COMPLETED, task_id))
    return task_id, parent, await bot.download_reply(parent)


def told(bot: Harness, user: str, words: str) -> list[dict[str, Any]]:
    return [m for m in bot.slack.ephemerals_to(user) if words in text_of(m)]


async def opened_view(bot: Harness, callback_id: str) -> dict[str, Any]:
    """The form the bot opened last with ``callback_id``, as sent to views.open."""

    def views() -> list[dict[str, Any]]:
        found = [c.args["view"] for c in bot.slack.calls_to("views.open")]
        found = [json.loads(v) if isinstance(v, str) else v for v in found]
        return [v for v in found if v["callback_id"] == callback_id]

    return (await bot.slack.wait_for(views))[-1]


async def refusals(bot: Harness, detail: str) -> list[str]:
    return [e.actor for e in await bot.runtime.store.audit.entries() if e.action == "refused" and e.detail == detail]


async def test_download_waits_for_the_recorded_verification_and_says_how(tmp_path: Path) -> None:
    """The task starts at Amazon at once; Download before the identity is recorded is refused in words naming the
    command and the button, and audited; ``verify`` records who, how and when (thread reply, first message,
    audit), and Download then gives the link."""
    async with running_bot(tmp_path, identity_verification="required") as bot:
        task_id, parent, reply = await ready(bot)
        assert len(bot.prime.starts()) == 1  # Amazon takes days: the task never waits for the verification
        assert "_not verified yet_" in text_of(latest(bot, parent["ts"]))

        await bot.press(reply, DOWNLOAD_ACTION)
        (refusal,) = await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "not recorded as verified"))
        assert "/data-request verify" in text_of(refusal) and "*Verify identity*" in text_of(refusal)
        assert "X-Amz-Signature" not in json.dumps(bot.slack.ephemerals_to("U0ALICE"))
        assert await refusals(bot, "download: identity not verified") == ["U0ALICE"]

        assert ack_text(await bot.slash(f"verify {task_id} order", user="U0BOB")) == ""
        await bot.slack.wait_for(lambda: told(bot, "U0BOB", "Recorded"))
        said = await bot.slack.wait_for(
            lambda: [p for p in bot.replies(parent["ts"]) if "recorded the shopper's identity" in text_of(p)]
        )
        assert "<@U0BOB>" in text_of(said[0]) and "order details" in text_of(said[0])
        await bot.slack.wait_for(lambda: "verified by <@U0BOB>" in text_of(latest(bot, parent["ts"])))
        assert VERIFY_ACTION not in json.dumps(latest(bot, parent["ts"]))  # nothing left to record
        request = await bot.runtime.store.requests.for_task(task_id)
        assert request is not None and (request.verified_by, request.verified_how) == ("U0BOB", "order")
        assert request.verified_at is not None
        verified = [e for e in await bot.runtime.store.audit.entries() if e.action == "identity verified"]
        assert [(e.actor, e.detail) for e in verified] == [("U0BOB", "order")]

        await bot.press(reply, DOWNLOAD_ACTION)
        await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "Download data_retrieval.zip"))
        await bot.slash(f"verify {task_id} email", user="U0BOB")  # once per case
        await bot.slack.wait_for(lambda: told(bot, "U0BOB", "already recorded as verified by <@U0BOB>"))


async def test_the_verify_button_opens_a_form_checked_beside_its_fields(tmp_path: Path) -> None:
    """**Verify identity** opens a form; no method, or a note naming an email, is answered beside the field and
    saves nothing; a good one is recorded, its note sealed in the database, shown escaped to whoever asks
    ``status`` and never in the channel."""
    async with running_bot(tmp_path, identity_verification="required") as bot:
        task_id, parent = await bot.request(EMAIL)
        first = await bot.slack.wait_for(lambda: with_button(bot, parent["ts"], VERIFY_ACTION))
        await bot.press(first, VERIFY_ACTION, user="U0BOB")
        view = await opened_view(bot, "record_verify")
        note = "passport checked by <!channel> desk"

        answer = await bot.submit(view, {"note": {"note": ""}}, user="U0BOB")
        assert answer.json()["response_action"] == "errors" and list(answer.json()["errors"]) == ["method"]
        picked = {"method": {"method": "document"}}
        answer = await bot.submit(view, {"note": {"note": f"sent from {EMAIL}"}}, user="U0BOB", selected=picked)
        assert answer.json()["response_action"] == "errors" and list(answer.json()["errors"]) == ["note"]
        request = await bot.runtime.store.requests.for_task(task_id)
        assert request is not None and request.verified_at is None

        answer = await bot.submit(view, {"note": {"note": note}}, user="U0BOB", selected=picked)
        assert answer.status_code == 200 and not answer.content.strip()
        await bot.slack.wait_for(lambda: told(bot, "U0BOB", "Recorded"))
        request = await bot.runtime.store.requests.for_task(task_id)
        assert request is not None and (request.verified_by, request.verified_how) == ("U0BOB", "document")
        assert (await bot.runtime.store.verdicts.notes(request.id)).verified == note
        with sqlite3.connect(bot.settings.database_path) as db:
            (sealed,) = db.execute("SELECT verified_note_sealed FROM requests WHERE id = ?", (request.id,)).fetchone()
        assert sealed and b"passport" not in sealed
        assert "passport" not in bot.slack.public_text()

        await bot.slash(f"status {task_id}", user="U0ALICE")
        (status,) = await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "Verification note"))
        assert "&lt;!channel&gt;" in text_of(status) and "<!channel>" not in text_of(status)
        assert "verified by <@U0BOB>" in text_of(status)


async def test_an_erasure_is_approved_only_once_the_identity_is_recorded(tmp_path: Path) -> None:
    """Approve before the verification is refused, saying how, and nothing reaches Amazon; once recorded, the same
    click starts the deletion."""
    async with running_bot(tmp_path, identity_verification="required") as bot:
        parent = await ask(bot, "delete erase.me@example.com")
        await bot.press(with_button(bot, parent["ts"], APPROVE_ACTION) or {}, APPROVE_ACTION, user="U0BOB")
        (refusal,) = await bot.slack.wait_for(lambda: told(bot, "U0BOB", "cannot be approved"))
        assert "/data-request verify" in text_of(refusal) and "*Approve* again" in text_of(refusal)
        assert await refusals(bot, "approve: identity not verified") == ["U0BOB"]
        assert bot.prime.deletion_starts() == []

        await bot.slash("verify erase.me@example.com agent", user="U0ALICE")
        await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "Recorded"))
        await bot.press(with_button(bot, parent["ts"], APPROVE_ACTION) or {}, APPROVE_ACTION, user="U0BOB")
        await bot.prime.wait_for(lambda: bot.prime.deletion_starts())
        request = await request_of(bot, parent)
        assert (request.verified_by, request.verified_how, request.approved_by) == ("U0ALICE", "agent", "U0BOB")


async def test_only_allowed_users_record_a_verification(bot: Harness) -> None:
    """Someone not on the allow-list is refused by the command and the button alike (audited), and no form opens."""
    task_id, parent = await bot.request(EMAIL)
    await bot.slash(f"verify {task_id} order", user="U0MALLORY")
    await bot.slack.wait_for(lambda: told(bot, "U0MALLORY", "not allowed"))
    first = await bot.slack.wait_for(lambda: with_button(bot, parent["ts"], VERIFY_ACTION))
    await bot.press(first, VERIFY_ACTION, user="U0MALLORY")
    await bot.slack.wait_for(lambda: len(told(bot, "U0MALLORY", "not allowed")) == 2 or None)
    assert bot.slack.calls_to("views.open") == []
    assert await refusals(bot, "verify: not allowed") == ["U0MALLORY", "U0MALLORY"]
    request = await bot.runtime.store.requests.for_task(task_id)
    assert request is not None and request.verified_at is None


async def test_a_verify_command_that_cannot_be_kept_is_answered_at_once(bot: Harness) -> None:
    """An unknown method lists the methods (the typed word escaped), ``--note`` needs words, a note with an email
    is refused, and an unknown case says so; nothing is recorded."""
    answer = ack_text(await bot.slash("verify jane@example.com <!here>"))
    assert "`order`, `email`, `document`, `agent`, `other`" in answer and "&lt;!here&gt;" in answer
    assert "needs the words after it" in ack_text(await bot.slash("verify jane@example.com order --note"))
    assert "without the shopper's email" in ack_text(await bot.slash(f"verify x order --note from {EMAIL}"))
    assert "takes an email or task id" in ack_text(await bot.slash("verify jane@example.com"))
    await bot.slash("verify nobody@example.com order")
    await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "I know of no data request"))


def test_identity_verification_takes_required_or_off_and_names_itself_when_wrong() -> None:
    """Unset means required; ``off`` turns it off; anything else is one problem naming the setting."""
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "secret"}
    assert load_settings(env, sandbox=True).verification_required
    assert not load_settings({**env, "IDENTITY_VERIFICATION": "OFF"}, sandbox=True).verification_required
    with pytest.raises(ConfigError) as raised:
        load_settings({**env, "IDENTITY_VERIFICATION": "sometimes"}, sandbox=True)
    assert [what for what, _ in raised.value.problems] == ["IDENTITY_VERIFICATION must be one of required, off"]


async def test_serve_refuses_a_wrong_identity_verification_in_one_line(fakes: Fakes, tmp_path: Path) -> None:
    """``serve`` with IDENTITY_VERIFICATION=maybe exits 2 with one line naming the setting, no traceback."""
    finished = await run_bot("serve", env=fakes.env(tmp_path, IDENTITY_VERIFICATION="maybe"), cwd=tmp_path)
    assert finished.returncode == 2, finished.stderr
    lines = [line for line in finished.stderr.splitlines() if "IDENTITY_VERIFICATION" in line]
    assert len(lines) == 1 and "Traceback" not in finished.stderr


async def test_off_is_warned_about_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """IDENTITY_VERIFICATION=off starts with a warning that says what it turns off; required starts without it."""
    with caplog.at_level(logging.WARNING, logger="bot.runtime"):
        async with running_bot(tmp_path / "off", identity_verification="off"):
            pass
        warned = [r.getMessage() for r in caplog.records if "IDENTITY_VERIFICATION=off" in r.getMessage()]
        assert len(warned) == 1 and "Download" in warned[0]
        caplog.clear()
        async with running_bot(tmp_path / "required", identity_verification="required"):
            pass
        assert not [r for r in caplog.records if "IDENTITY_VERIFICATION" in r.getMessage()]


async def test_a_verified_case_shows_no_verify_button_and_the_form_is_not_offered_again(tmp_path: Path) -> None:
    """A second click on an old **Verify identity** button answers who verified it, and opens no form."""
    async with running_bot(tmp_path, identity_verification="required") as bot:
        task_id, parent = await bot.request(EMAIL)
        first = await bot.slack.wait_for(lambda: with_button(bot, parent["ts"], VERIFY_ACTION))
        await bot.slash(f"verify {task_id} email")
        await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "Recorded"))
        await bot.press(first, VERIFY_ACTION, user="U0BOB")
        await bot.slack.wait_for(lambda: told(bot, "U0BOB", "already recorded as verified by <@U0ALICE>"))
        assert bot.slack.calls_to("views.open") == []
        await bot.slack.wait_for(
            lambda: VERIFY_ACTION not in [b["action_id"] for b in buttons(latest(bot, parent["ts"]))] or None
        )


async def test_check_warns_when_identity_verification_is_off(fakes: Fakes, tmp_path: Path) -> None:
    """``check`` with IDENTITY_VERIFICATION=off warns in one line; with the default it says nothing of it."""
    (tmp_path / "data").mkdir()
    off = await run_bot("check", env=fakes.env(tmp_path, IDENTITY_VERIFICATION="off"), cwd=tmp_path)
    assert off.returncode == 0, off.stdout + off.stderr
    assert [line for line in off.lines if line.startswith("! IDENTITY_VERIFICATION=off")]
    env = fakes.env(tmp_path)
    del env["IDENTITY_VERIFICATION"]
    default = await run_bot("check", env=env, cwd=tmp_path)
    assert default.returncode == 0 and "IDENTITY_VERIFICATION" not in default.stdout
