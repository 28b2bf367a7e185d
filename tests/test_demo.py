"""`data-request-bot demo`: the whole flow offline, printed as the people in Slack would see it."""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import start_sandboxed
from bot.clients import build_slack_client
from bot.settings import Settings
from offline.demo import run_demo
from offline.slack import LocalSlack

ROOT = Path(__file__).resolve().parents[1]
PRIVATE = re.compile(r"^  only @(\w+) sees:$")
LINK = re.compile(r"https?://\S+X-Amz-Signature=[0-9a-f]+")


@pytest.fixture
def root_logging() -> Iterator[None]:
    """run_demo configures the root logger as the CLI does; put pytest's logging back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def blocks(transcript: str) -> list[tuple[str, list[str]]]:
    """The transcript as (heading, lines shown under it); a line outside any message is its own heading."""
    found: list[tuple[str, list[str]]] = []
    for line in transcript.splitlines():
        if line.startswith("    │ ") and found:
            found[-1][1].append(line.removeprefix("    │ "))
        else:
            found.append((line, []))
    return found


def shown_to(transcript: str, user: str) -> list[list[str]]:
    """Every message only ``user`` saw, as its lines."""
    return [lines for heading, lines in blocks(transcript) if heading == f"  only @{user} sees:"]


def channel_visible(transcript: str) -> str:
    """The transcript without the messages shown to one person alone."""
    return "\n".join(
        "\n".join([heading, *lines]) for heading, lines in blocks(transcript) if not PRIVATE.match(heading)
    )


@pytest.fixture(scope="module")
def transcript_holder() -> dict[str, object]:
    return {}


@pytest.fixture
async def demo(root_logging: None, transcript_holder: dict[str, object]) -> tuple[int, str]:
    """Run the demo once per module (about five seconds) and share its exit status and transcript."""
    if "result" not in transcript_holder:
        out = io.StringIO()
        transcript_holder["result"] = (await run_demo(out=out, start_bot=start_sandboxed), out.getvalue())
    result: tuple[int, str] = transcript_holder["result"]  # type: ignore[assignment]
    return result


async def test_demo_returns_0_and_finishes(demo: tuple[int, str]) -> None:
    """The scene plays to its end and run_demo reports success."""
    status, transcript = demo
    assert status == 0
    assert transcript.rstrip().endswith(
        "Demo finished: no Slack workspace, no Amazon account and no network were used."
    )


async def test_demo_thread_masks_the_email_and_shows_task_and_status_as_they_change(demo: tuple[int, str]) -> None:
    """The thread's first message masks the email, then is updated to name the task and its status."""
    _, transcript = demo
    posted = [lines for heading, lines in blocks(transcript) if heading.endswith("posted in #compliance:")]
    assert "Shopper data request for j***@example.com" in posted[0]
    assert "Task: not started yet" in posted[0]
    facts = next(line for line in posted[0] if line.startswith("Received "))
    assert "GDPR" in facts and "via email" in facts and "ref ZD-4711" in facts, facts
    assert not any("jane.doe@example.com" in line for _, lines in blocks(transcript) for line in lines)
    updates = [lines for heading, lines in blocks(transcript) if heading == "  the thread's first message now reads:"]
    tasks = [line for lines in updates for line in lines if re.fullmatch(r"Task: sbx-[0-9a-f]+-c-[0-9a-f]{12}", line)]
    assert tasks, updates
    statuses = [line for lines in updates for line in lines if line.startswith("Status:")]
    assert any("In progress" in s for s in statuses) and any("Ready" in s for s in statuses)


async def test_demo_shows_download_button_and_the_link_to_the_clicker_alone(demo: tuple[int, str]) -> None:
    """The reply has Download; the link is shown only to @alice, and the browser gets the zip with HTTP 200."""
    _, transcript = demo
    replies = [lines for heading, lines in blocks(transcript) if heading.endswith("replied in the thread:")]
    assert any("[ Download ]" in line for line in replies[0])
    assert re.search(r"\n  only @alice sees:\n    │ .*X-Amz-Signature=", transcript)
    assert any(LINK.search(line) for lines in shown_to(transcript, "alice") for line in lines)
    assert re.search(r"downloads data_retrieval\.zip: HTTP 200, \d+ bytes, files: README\.txt", transcript)


async def test_demo_refuses_mallory_and_shows_the_failure_and_the_audit_log(demo: tuple[int, str]) -> None:
    """Mallory is refused privately; the notfound request fails with DATA_SUBJECT_NOT_FOUND; the audit log shows all,
    with dates and people's Slack names beside their ids."""
    _, transcript = demo
    assert any("not allowed" in line for lines in shown_to(transcript, "mallory") for line in lines)
    assert not any(LINK.search(line) for lines in shown_to(transcript, "mallory") for line in lines)
    replies = [lines for heading, lines in blocks(transcript) if heading.endswith("replied in the thread:")]
    assert any("DATA_SUBJECT_NOT_FOUND" in line for lines in replies for line in lines)
    audit = transcript.split("The audit log", 1)[1]
    for action in ("requested", "task started", "completed", "link shown", "refused", "failed  DATA_SUBJECT_NOT_FOUND"):
        assert action in audit, action
    assert "mallory" in audit and "X-Amz" not in audit
    assert re.search(
        r"\n    \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC  request 1  @alice \(U0ALICE\) +requested", audit
    ), audit


async def test_demo_plays_an_approved_and_a_cancelled_erasure(demo: tuple[int, str]) -> None:
    """Alice's own Approve is refused privately; Bob's starts the deletion, held ("On hold until"), then Deleted;
    a second erasure is cancelled by Alice during its hold; the audit log shows approved, task started, cancelled."""
    _, transcript = demo
    erasures = transcript.split("erases a shopper's data", 1)[1]
    assert any("another allowed person must approve" in line for lines in shown_to(erasures, "alice") for line in lines)
    updates = [lines for heading, lines in blocks(erasures) if heading == "  the thread's first message now reads:"]
    statuses = [line for lines in updates for line in lines if line.startswith("Status:")]
    assert any("On hold until" in s for s in statuses), statuses
    assert any("Deleted" in s for s in statuses) and any("Cancelled by @alice" in s for s in statuses)
    typed = ("delete erase.me@example.com", "verify erase.me@example.com")  # slash commands are never posted
    assert "erase.me@example.com" not in functools.reduce(
        lambda text, t: text.replace(t, ""), typed, channel_visible(transcript)
    )
    audit = transcript.split("The audit log", 1)[1]
    assert re.search(r"@bob \(U0BOB\) +approved", audit) and re.search(r"@alice \(U0ALICE\) +cancelled  task", audit)
    assert "approve: own request" in audit and "hold 10 days" in audit


def steps(transcript: str) -> list[tuple[str, str]]:
    """The transcript cut before each step (``▶ @someone …``) and the audit log: (its first line, all it printed)."""
    return [(part.splitlines()[0], part) for part in re.split(r"^(?=▶ |The audit log)", transcript, flags=re.M)[1:]]


async def test_demo_prints_each_thread_reply_under_the_step_that_caused_it(demo: tuple[int, str]) -> None:
    """The demo prints a step only once the outbox has sent the last one's posts: each thread reply shows under
    the step that caused it, in order, and none under a later step or after the audit log's heading."""
    _, transcript = demo
    verified = "recorded the shopper's identity as verified"
    expected = [
        ("▶ @alice types  /data-request jane.doe@example.com", "The shopper's data is ready"),
        (
            "▶ @alice checks the order number the shopper quoted, then types  /data-request verify "
            "jane.doe@example.com order --note quoted order number and delivery town",
            verified,
        ),
        ("▶ @bob types  /data-request notfound.shopper@example.com", "could not retrieve the shopper's data"),
        (
            "▶ @bob replies to the shopper's email, then types  /data-request verify erase.me@example.com email",
            verified,
        ),
        ("▶ @bob clicks Approve", "Buy with Prime deleted the shopper's data (task sbxdel-"),
        ("▶ @alice types  /data-request verify cancel.me@example.com document", verified),
        ("▶ @bob clicks Approve", "The holding period (30 days) plus the up to 30 days"),  # past the due date
        (
            "▶ @alice learns the shopper changed their mind, and clicks Cancel deletion during the hold",
            "Deletion cancelled by @alice",
        ),
        (
            "▶ @bob types  /data-request deny twice.asked@example.com duplicate --note asked again by phone",
            "@bob denied this request: it duplicates another request. Nothing was sent to Buy with Prime.",
        ),
    ]
    replies = [
        (step, lines[0])
        for step, printed in steps(transcript)
        for heading, lines in blocks(printed)
        if heading.endswith("replied in the thread:")
    ]
    assert len(replies) == len(expected), replies
    for (under, reply), (step, words) in zip(replies, expected, strict=True):
        assert under.startswith(step) and words in reply, (under, reply)
    assert steps(transcript)[-1][1].count("│") == 0, "a post printed after the audit log's heading"


async def test_demo_never_shows_a_presigned_link_where_the_channel_sees_it(demo: tuple[int, str]) -> None:
    """Outside the messages shown to one person alone, no X-Amz-Signature appears anywhere."""
    _, transcript = demo
    assert "X-Amz-Signature" in transcript  # the private block really carries it
    assert "X-Amz-Signature" not in channel_visible(transcript)


def test_python_m_bot_demo_runs_offline_without_any_slack_or_bwp_setting(tmp_path: Path) -> None:
    """`python -m bot demo` with no SLACK_ or BWP_ variables exits 0 within 60 s and prints "Demo finished"."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BWP_", "RELAY_", "DATABASE_"))}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Demo finished" in done.stdout
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # the temporary database lived elsewhere and is gone


async def test_a_proxy_in_the_environment_does_not_capture_the_demos_loopback_slack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With HTTPS_PROXY set and NO_PROXY naming loopback, the Slack client the demo builds still reaches 127.0.0.1."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    slack = LocalSlack(token="xoxb-demo", show=lambda kind, message: None)
    await slack.start()
    try:
        settings = Settings(slack_bot_token="xoxb-demo", slack_api_url=slack.base_url + "/api/")
        client = build_slack_client(settings, retry_interval=0.0)
        assert (await client.auth_test())["ok"]
    finally:
        await slack.stop()


async def test_demo_verifies_the_shoppers_identity_before_download_and_denies_a_duplicate(
    demo: tuple[int, str],
) -> None:
    """Download before the identity is recorded is refused, saying how; after ``verify`` it gives the link; the
    not-found shopper's case closes as ``no data``; a duplicate erasure is denied with nothing sent to Amazon;
    the audit log names each step with its method, outcome or reason, never a note."""
    _, transcript = demo
    refused = transcript.split("clicks Download before recording", 1)[1].split("▶", 1)[0]
    assert "not recorded as verified yet" in refused and "/data-request verify" in refused
    assert "Verify identity" in refused and "X-Amz-Signature" not in refused
    assert "Identity: verified by @alice" in transcript and "no data)" in transcript
    denial = transcript.split("denied with a reason", 1)[1].split("The audit log", 1)[0]
    assert "Status: ⛔ Denied by @bob" in denial and "[ Approve ]" in denial.split("deny twice", 1)[0]
    audit = transcript.split("The audit log", 1)[1]
    for entry in (
        r"refused  download: identity not verified",
        r"identity verified  order",
        r"closed  answer sent to shopper: complied",
        r"closed  answer sent to shopper: no data",
        r"refused  approve: identity not verified",
        r"denied  duplicate",
    ):
        assert re.search(entry, audit), entry
    posted = [line for heading, lines in blocks(transcript) if not PRIVATE.match(heading) for line in lines]
    assert not [line for line in posted if "delivery town" in line or "again by phone" in line]  # notes stay sealed
    assert "asked again by phone" not in audit
