"""Odd input and broken disks get words, not 500s: bad timestamps, a database that refuses writes or cannot open."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest
from fakes import slack_headers, slash_body, text_of
from harness import CHANNEL, SIGNING_SECRET, Harness, ack_text, envelope, eventually
from processes import Fakes, free_port, run_bot

from store import RequestStatus

COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"
FAILED = "PERSONAL_DATA_RETRIEVAL_TASK_FAILED"


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("stamp", ["abc", "1796074426.5", "", "1" * 5000])
async def test_a_timestamp_that_is_not_whole_seconds_is_refused_without_a_traceback(
    bot: Harness, caplog: pytest.LogCaptureFixture, stamp: str
) -> None:
    """X-Slack-Request-Timestamp `abc` or `1796074426.5` is a 401, not a 500 with a traceback."""
    body = slash_body(
        "odd@example.com", user="U0ALICE", channel=CHANNEL, response_url=bot.slack.response_url("U0ALICE")
    )
    headers = slack_headers(body, SIGNING_SECRET) | {"X-Slack-Request-Timestamp": stamp}
    caplog.set_level(logging.INFO)
    response = await bot.http.post(bot.url + "/slack/events", content=body, headers=headers)
    assert response.status_code == 401
    no_tracebacks(caplog)
    assert not bot.prime.starts()


async def test_a_command_while_the_database_refuses_writes_is_told_and_readyz_says_not_ready(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Writes refused (disk full, read-only): the typer gets "cannot save", /readyz 503, the relay 500; then back."""
    connection = bot.runtime.store._database.connection
    await connection.execute("PRAGMA query_only = 1")  # SQLite now refuses every write, as on a full disk
    response = await bot.slash("full@example.com")
    assert response.status_code == 200
    assert "cannot save requests right now" in ack_text(response)
    ready = await bot.http.get(bot.url + "/readyz")
    assert ready.status_code == 503 and ready.json()["database_writes_failing"] is True
    assert "data_request_bot_database_writes_failing 1.0" in (await bot.http.get(bot.url + "/metrics")).text
    relayed = await bot.relay(envelope(COMPLETED, "some-task"))
    assert relayed.status_code == 500  # EventBridge keeps the event and retries
    no_tracebacks(caplog)
    assert not bot.prime.starts() and not bot.parents()

    await connection.execute("PRAGMA query_only = 0")  # the operator freed space
    await bot.request("full@example.com")
    ready = await bot.http.get(bot.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["database_writes_failing"] is False
    assert "data_request_bot_database_writes_failing 0.0" in (await bot.http.get(bot.url + "/metrics")).text


def unopenable_paths(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    paths = [folder, tmp_path / "a-file" / "requests.db"]  # a folder where the file should be; a file as folder
    (tmp_path / "a-file").write_text("not a folder")
    if Path("/proc/self").exists():
        paths.append(Path("/proc/data-requests.db"))  # a read-only filesystem (even for root)
    return paths


async def test_serve_and_audit_say_in_one_line_when_the_database_cannot_be_opened(fakes: Fakes, tmp_path: Path) -> None:
    """A database path that cannot be opened ends serve and audit with exit 2 and one line naming DATABASE_PATH."""
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    for path in unopenable_paths(tmp_path):
        env = fakes.env(tmp_path, DATABASE_PATH=str(path), ENCRYPTION_KEY=key, PORT=str(free_port()))
        for command in (["serve"], ["audit"]):
            done = await run_bot(*command, env=env, cwd=tmp_path)
            said = done.stderr.strip().splitlines()
            assert done.returncode == 2, (command, path, done.stderr)
            assert len(said) == 1 and "DATABASE_PATH" in said[0], (command, path, done.stderr)
            assert "Traceback" not in done.stderr


async def test_a_task_that_fails_after_completing_is_failed_in_the_thread_status_and_download(bot: Harness) -> None:
    """COMPLETED then FAILED at Amazon: the reason is posted once, the thread says failed, status and Download agree."""
    task_id, parent = await bot.request("late.failure@example.com")
    bot.prime.complete(task_id)
    await bot.relay(envelope(COMPLETED, task_id))
    ready = await bot.download_reply(parent)

    bot.prime.fail(task_id, code="DATA_EXPIRED", message="The retrieved data could not be kept")
    for _ in range(2):  # a re-delivered event changes nothing more
        assert (await bot.relay(envelope(FAILED, task_id))).status_code == 200
    failure = await bot.slack.wait_for(lambda: [p for p in bot.replies(parent["ts"]) if "DATA_EXPIRED" in text_of(p)])
    assert "could not be kept" in text_of(failure[0])
    await bot.slack.wait_for(
        lambda: [u for u in bot.slack.updates() if u["ts"] == parent["ts"] and "Failed" in text_of(u)]
    )
    assert (await bot.runtime.store.requests.get(1)).status is RequestStatus.FAILED  # type: ignore[union-attr]

    await bot.slash("status late.failure@example.com")
    said = await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0ALICE") if "l***" in text_of(e)])
    assert "Failed" in text_of(said[-1]) and "Ready" not in text_of(said[-1])
    await bot.click(ready)
    refused = await bot.slack.wait_for(
        lambda: [e for e in bot.slack.ephemerals_to("U0ALICE") if "nothing to download" in text_of(e)]
    )
    assert "http" not in text_of(refused[-1])
    await eventually(lambda: _audited(bot, "failed"))
    assert len([p for p in bot.replies(parent["ts"]) if "DATA_EXPIRED" in text_of(p)]) == 1


async def _audited(bot: Harness, action: str) -> bool:
    return action in [e.action for e in await bot.runtime.store.audit.entries(request_id=1)]


async def test_extend_is_only_for_started_open_requests(bot: Harness) -> None:
    """An ABANDONED request (Slack refused its first message) is not extended, and no thread update is queued."""
    bot.slack.fail["chat.postMessage"] = ["msg_too_long"]
    await bot.slash("abandoned@example.com")
    await eventually(lambda: _status_is(bot, 1, RequestStatus.ABANDONED))
    await bot.slack.wait_for(lambda: bot.slack.posts("U0ALICE"))  # the requester is told directly
    await bot.slash("extend abandoned@example.com 45d")
    said = await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0ALICE") if "extend" in text_of(e)])
    assert "never started" in text_of(said[-1])
    assert not await _audited(bot, "deadline extended")
    assert (await bot.runtime.store.backlog())["outbox_pending"] == 0
    assert not [c for c in bot.slack.calls_to("chat.update") if not c.args.get("ts")]


async def test_a_second_extension_needs_again_and_is_audited_as_such(bot: Harness) -> None:
    """CCPA allows one extension: a second `extend` is refused with how to insist; `--again` extends and is audited."""
    await bot.request("twice@example.com")
    await bot.slash("extend twice@example.com 45d")
    await eventually(lambda: _audited(bot, "deadline extended"))
    first = (await bot.runtime.store.requests.get(1)).due_at  # type: ignore[union-attr]

    await bot.slash("extend twice@example.com 45d", user="U0BOB")
    said = await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0BOB") if "--again" in text_of(e)])
    assert "already extended" in text_of(said[-1]) and "<@U0ALICE>" in text_of(said[-1])
    assert (await bot.runtime.store.requests.get(1)).due_at == first  # type: ignore[union-attr]

    await bot.slash("extend twice@example.com 30d --again", user="U0BOB")
    await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0BOB") if "Extended by 30" in text_of(e)])
    assert (await bot.runtime.store.requests.get(1)).due_at == first + 30 * 86_400  # type: ignore[union-attr]
    entries = [e for e in await bot.runtime.store.audit.entries(request_id=1) if e.action == "deadline extended"]
    assert [(e.actor, e.detail) for e in entries] == [
        ("U0ALICE", "+45 days"),
        ("U0BOB", "+30 days (a further extension, asked with --again)"),
    ]


async def _status_is(bot: Harness, request_id: int, status: RequestStatus) -> bool:
    request = await bot.runtime.store.requests.get(request_id)
    return request is not None and request.status is status
