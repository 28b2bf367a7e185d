"""A button acts on the request it was posted for, or on nothing: ids come back after a restore, buttons don't.

A restored database hands out again the ids of the requests made after its backup, while their threads,
buttons and all, are still in Slack. Each button names its request by id *and* the request's own random
reference, and a click in a channel must come from that request's thread; anything else is refused in
words, audited, and touches no case.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from erasures import APPROVE_ACTION, REJECT_ACTION, approve, ask, latest, request_of, with_button
from fakes import buttons, text_of
from harness import Harness, envelope, eventually, running_bot

from handlers.buttons import CLOSE_ACTION
from handlers.kinds.retrieval.rules import DOWNLOAD_ACTION
from store import RequestStatus, backup_database

COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"
STALE = "Nothing was done"  # the refusal's words for a button that names no request the bot keeps


async def completed(bot: Harness, email: str) -> tuple[str, dict[str, Any]]:
    """Request ``email``, let Amazon finish it, and return (task id, the thread reply with Download)."""
    task_id, parent = await bot.request(email)
    bot.prime.complete(task_id)
    assert (await bot.relay(envelope(COMPLETED, task_id))).status_code == 200
    return task_id, await bot.download_reply(parent)


def with_value(message: dict[str, Any], value: str) -> dict[str, Any]:
    """The message as it would be with every button's value set to ``value`` (an older or forged post)."""
    changed = json.loads(json.dumps(message))
    for block in changed.get("blocks", []):
        for element in block.get("elements", []):
            if "value" in element:
                element["value"] = value
    return changed


async def refusals(bot: Harness, user: str) -> list[str]:
    return [e.detail for e in await bot.runtime.store.audit.entries() if e.actor == user and e.action == "refused"]


async def test_after_a_restore_the_old_threads_buttons_refuse_and_leave_the_new_case_alone(tmp_path: Path) -> None:
    """Backup, a request after it (id 2), restore, a new request (id 2 again): the old thread's Download shows
    no link and Mark as sent closes nothing; both are refused in words and audited; the new case still works."""
    async with running_bot(tmp_path / "bot") as bot:
        await bot.request("before.backup@example.com")
        live = bot.settings.database_path
        copy = tmp_path / "backup.db"
        await asyncio.to_thread(backup_database, live, copy)
        _, old_reply = await completed(bot, "after.backup@example.com")

        # The restore procedure (docs/operating.md): stop, drop the WAL, copy the backup over, start.
        await bot.runtime.stop()
        bot.crashed = True
        for leftover in (live.with_name(live.name + "-wal"), live.with_name(live.name + "-shm")):
            leftover.unlink(missing_ok=True)
        shutil.copy2(copy, live)
        await bot.restart()

        new_task, new_reply = await completed(bot, "new.shopper@example.com")
        new = await bot.runtime.store.requests.for_task(new_task)
        assert new is not None and new.id == 2  # the id the old thread's buttons were made for
        links_before, queries_before = len(bot.prime.links), len(bot.prime.queries())

        assert (await bot.press(old_reply, DOWNLOAD_ACTION, user="U0BOB")).status_code == 200
        refusal = await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0BOB") if STALE in text_of(e)])
        assert "restored" in text_of(refusal[0])
        assert (await bot.press(old_reply, CLOSE_ACTION, user="U0BOB")).status_code == 200
        await bot.slack.wait_for(lambda: len([e for e in bot.slack.ephemerals_to("U0BOB") if STALE in text_of(e)]) == 2)

        assert len(bot.prime.links) == links_before and len(bot.prime.queries()) == queries_before
        assert not [e for e in bot.slack.ephemerals_to("U0BOB") if "X-Amz" in text_of(e)]
        still = await bot.runtime.store.requests.get(new.id)
        assert still is not None and still.closed_at is None
        details = await refusals(bot, "U0BOB")
        assert len(details) == 2 and details[0].startswith("download: ") and details[1].startswith("close: ")
        entries = await bot.runtime.store.audit.entries()
        assert not [e for e in entries if e.request_id == new.id and e.action in ("link shown", "closed")]

        # The new thread's own buttons still work.
        await bot.press(new_reply, DOWNLOAD_ACTION, user="U0BOB")
        await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0BOB") if "X-Amz" in text_of(e)])
        await bot.press(new_reply, CLOSE_ACTION, user="U0BOB")

        async def closed() -> bool:
            case = await bot.runtime.store.requests.get(new.id)
            return case is not None and case.closed_at is not None

        await eventually(closed)
        bot.crashed = False


async def test_a_button_posted_in_another_thread_is_refused(bot: Harness) -> None:
    """A request's button clicked in another request's thread (its value copied there) is refused."""
    _, first = await completed(bot, "first@example.com")
    _, second = await completed(bot, "second@example.com")
    moved = {**second, "blocks": first["blocks"]}  # the first request's buttons, in the second's thread
    await bot.press(moved, DOWNLOAD_ACTION, user="U0BOB")
    await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0BOB") if STALE in text_of(e)])
    assert not [e for e in bot.slack.ephemerals_to("U0BOB") if "X-Amz" in text_of(e)]
    assert (await refusals(bot, "U0BOB"))[0].startswith("download: ")


@pytest.mark.parametrize("value", ["1" * 30, "9" * 19, "²", "-1", "1.", "1.no spaces", "", "1." + "a" * 100])
async def test_a_malformed_or_overlong_value_gets_an_audited_refusal_and_no_traceback(
    bot: Harness, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A value no button of this bot carries (a 30-digit id among them) is refused in words and audited,
    for an allowed user; for anyone else the allow-list refusal comes first, audited as always."""
    _, reply = await completed(bot, "odd.value@example.com")
    forged = with_value(reply, value)
    with caplog.at_level(logging.WARNING):
        await bot.press(forged, DOWNLOAD_ACTION, user="U0BOB")
        await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0BOB") if STALE in text_of(e)])
        await bot.press(forged, CLOSE_ACTION, user="U0MALLORY")
        await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0MALLORY"))
    assert "not allowed" in text_of(bot.slack.ephemerals_to("U0MALLORY")[0])
    assert (await refusals(bot, "U0MALLORY")) == ["close: not allowed"]
    assert (await refusals(bot, "U0BOB"))[0].startswith("download: ")
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text


async def test_a_button_from_before_references_works_in_its_own_thread_only(bot: Harness) -> None:
    """A button posted before values carried a reference (the bare id) still works where it was posted,
    in its request's own thread; the same value clicked elsewhere, or from an ephemeral answer, is refused."""
    task_id, reply = await completed(bot, "older.post@example.com")
    request = await bot.runtime.store.requests.for_task(task_id)
    assert request is not None
    legacy = with_value(reply, str(request.id))
    await bot.press(legacy, DOWNLOAD_ACTION, user="U0BOB")
    await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0BOB") if "X-Amz" in text_of(e)])

    _, other = await completed(bot, "other.thread@example.com")
    await bot.press({**other, "blocks": legacy["blocks"]}, DOWNLOAD_ACTION, user="U0BOB")
    await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0BOB") if STALE in text_of(e)])
    assert len([e for e in bot.slack.ephemerals_to("U0BOB") if "X-Amz" in text_of(e)]) == 1


async def test_status_answers_download_by_reference_alone(bot: Harness) -> None:
    """``status``'s Download (an ephemeral answer, no thread) gives the link; the same answer with the
    reference changed does not."""
    task_id, _ = await completed(bot, "status.click@example.com")
    await bot.slash(f"status {task_id}", user="U0BOB")
    status = await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0BOB") if buttons(e)][0])  # noqa: RUF015
    shown = {**status, "ts": "1699999999.000001"}  # an ephemeral's own ts: no thread of the bot's
    assert (await bot.press(shown, DOWNLOAD_ACTION, user="U0BOB", ephemeral=True)).status_code == 200
    await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0BOB") if "X-Amz" in text_of(e)])

    (value,) = [b["value"] for b in buttons(status)]
    wrong = with_value(shown, value.rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAA")
    await bot.press(wrong, DOWNLOAD_ACTION, user="U0BOB", ephemeral=True)
    await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0BOB") if STALE in text_of(e)])


async def test_an_erasures_buttons_and_its_reject_form_act_only_on_their_own_request(bot: Harness) -> None:
    """Approve with another reference starts nothing; a Reject form whose request is not the one it names, or
    from an older version (a bare id), rejects nothing; each is refused, audited, and the erasure still waits."""
    parent = await ask(bot, "delete erase.me@example.com")
    message = with_button(bot, parent["ts"], APPROVE_ACTION)
    assert message is not None
    request = await request_of(bot, parent)
    other_ref = f"{request.id}.{'0' * len(request.ref)}"

    await bot.press(with_value(message, other_ref), APPROVE_ACTION, user="U0BOB")
    await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0BOB") if STALE in text_of(e)])

    await bot.press(message, REJECT_ACTION, user="U0BOB")
    form = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open") and bot.opened_form())
    stored = json.loads(form["private_metadata"])
    for metadata in (json.dumps({**stored, "request": other_ref}), str(request.id)):
        await bot.submit({**form, "private_metadata": metadata}, {"reason": {"reason": "not ours"}}, user="U0BOB")
    await bot.slack.wait_for(lambda: len([e for e in bot.slack.ephemerals_to("U0BOB") if STALE in text_of(e)]) == 2)

    async def all_refused() -> bool:
        return len(await refusals(bot, "U0BOB")) == 3

    await eventually(all_refused)
    details = await refusals(bot, "U0BOB")
    assert details[0].startswith("approve: ") and all(d.startswith("reject: ") for d in details[1:])
    assert bot.prime.deletion_starts() == []
    still = await bot.runtime.store.requests.get(request.id)
    assert still is not None and still.status is RequestStatus.AWAITING_APPROVAL and still.closed_at is None

    await bot.submit(form, {"reason": {"reason": "not ours"}}, user="U0BOB")  # the form as the bot made it
    await bot.slack.wait_for(lambda: "Rejected by <@U0BOB>" in text_of(latest(bot, parent["ts"])))


def with_action(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    """The message as it would be with every button's action id set to ``action_id`` (a forged post)."""
    changed = json.loads(json.dumps(message))
    for block in changed.get("blocks", []):
        for element in block.get("elements", []):
            if "action_id" in element:
                element["action_id"] = action_id
    return changed


async def test_a_kinds_button_acts_only_on_a_request_of_that_kind(bot: Harness) -> None:
    """Download carrying a started erasure's value, in the erasure's own thread, asks Amazon for nothing; Approve
    carrying a retrieval's value approves nothing: each is answered as no request of that button's kind."""
    parent = await ask(bot, "delete erase.me@example.com --hold 10d")
    await approve(bot, parent, "erase.me@example.com")
    on_hold = latest(bot, parent["ts"])  # its Cancel deletion button, in its own thread
    _, ready = await completed(bot, "kept@example.com")
    links_before, queries_before = len(bot.prime.links), len(bot.prime.deletion_queries())

    await bot.press(with_action(on_hold, DOWNLOAD_ACTION), DOWNLOAD_ACTION, user="U0BOB")
    await bot.press(with_action(ready, APPROVE_ACTION), APPROVE_ACTION, user="U0BOB")
    await bot.slack.wait_for(
        lambda: len([e for e in bot.slack.ephemerals_to("U0BOB") if "I know of no data request" in text_of(e)]) == 2
    )
    assert (len(bot.prime.links), len(bot.prime.deletion_queries())) == (links_before, queries_before)
    erasure = await request_of(bot, parent)
    assert erasure.status is RequestStatus.ON_HOLD
