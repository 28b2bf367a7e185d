"""Intake that knows the facts: when and how the shopper asked, staff's ticket, identity already verified.

Through signed slash commands, shortcuts and form submissions to the running bot: what is kept, what the
thread says, what the deadline counts from, and every mistake answered in words (beside the form's field).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from erasures import ask, request_of
from fakes import text_of
from harness import CHANNEL, Harness, SettableClock, ack_text, running_bot

from handlers.intake_form import NEW_REQUEST_SHORTCUT
from handlers.texts.form import FORM_VIEW
from store import Request

DAY = 86_400.0
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC).timestamp()  # the settable clock's "now" in these tests


def midnight(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


async def only_case(bot: Harness) -> Request:
    cases = await bot.runtime.store.cases.open(newest_first=True)
    assert len(cases) == 1, cases
    return cases[0]


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(NOW)


@pytest.fixture
async def bot(tmp_path: Path, clock: SettableClock) -> Any:
    async with running_bot(tmp_path, clock=clock) as harness:
        yield harness


# ----------------------------------------------------------------------------- the command


async def test_intake_options_are_kept_shown_in_the_thread_and_set_the_due_date_from_the_day_received(
    bot: Harness,
) -> None:
    """``--received`` sets the due date (received + the law's month), and every fact is kept and shown in the
    thread's first message: received, law, via, ref, and identity verified by the requester."""
    email = "jane@example.com"
    text = f"{email} gdpr --received 2026-03-01 --via email --ref ZD-4711 --verified order"
    await bot.request(text, email=email)
    case = await only_case(bot)
    assert case.received_on == "2026-03-01" and case.received_via == "email" and case.outside_ref == "ZD-4711"
    assert case.verified_how == "order" and case.verified_by == "U0ALICE"
    assert case.due_at == midnight("2026-04-01")  # one calendar month from the day the shopper asked
    shown = text_of(bot.parents()[0])
    for words in (
        "Received 2026-03-01",
        "GDPR",
        "via email",
        "ref `ZD-4711`",
        "verified by <@U0ALICE>",  # the Identity field, beside the facts' line
        "(order)",
    ):
        assert words in shown, shown


async def test_an_erasure_takes_the_same_intake_options(bot: Harness) -> None:
    """``delete`` keeps the same facts, beside its own ``--hold`` and ``--reason``, and its thread shows them."""
    parent = await ask(
        bot, "delete erase@example.com ccpa --received 2026-03-02 --via phone --ref T-9 --hold 0d --reason asked"
    )
    case = await request_of(bot, parent)
    assert (case.received_on, case.received_via, case.outside_ref) == ("2026-03-02", "phone", "T-9")
    assert case.due_at == midnight("2026-03-02") + 45 * DAY and case.params["reason"] == "asked"
    assert "via phone" in text_of(parent) and "CCPA" in text_of(parent) and "ref `T-9`" in text_of(parent)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ("--received 2026-03-12", "2026-03-12 is in the future"),
        ("--received 2026-02-30", "`2026-02-30` is not a date"),
        ("--received yesterday", "`--received` takes the day the shopper asked as YYYY-MM-DD"),
        ("--received", "`nothing` is not a date"),
        ("--via fax", "`--via` takes one of `email`, `form`, `phone`, `mail`, `agent`, `other`; `fax` is none"),
        ("--verified vibes", "`--verified` takes one of `order`, `email`, `document`, `agent`, `other`"),
        ("--ref " + "x" * 65, "A reference is at most 64 characters"),
        ("--ref jane@example.com", "must not hold an email address"),
        ("--ref a`b", "one word without backticks"),
    ],
)
@pytest.mark.parametrize("verb", ["", "delete "])
async def test_each_intake_mistake_is_answered_in_words_with_an_example_and_starts_nothing(
    bot: Harness, verb: str, options: str, words: str
) -> None:
    """A date in the future or not a date, an unknown way in or method, a ref too long or naming an email: the
    acknowledgement says what is wrong and shows the command to type, for both kinds; nothing is stored."""
    said = ack_text(await bot.slash(f"{verb}x@example.com {options}"))
    assert words in said and f"Try `/data-request {verb}jane@example.com`" in said, said
    assert await bot.runtime.store.cases.open() == [] and not bot.prime.starts()


async def test_a_received_date_that_is_already_today_somewhere_is_taken(tmp_path: Path) -> None:
    """Late on 10 March UTC it is 11 March east of the date line: a shopper there asked "today"."""
    clock = SettableClock(datetime(2026, 3, 10, 23, 0, tzinfo=UTC).timestamp())
    async with running_bot(tmp_path, clock=clock) as bot:
        await bot.request("kiribati@example.com --received 2026-03-11", email="kiribati@example.com")
        case = await only_case(bot)
        assert case.received_on == "2026-03-11" and case.due_at == clock.now + 30 * DAY  # counted from now


async def test_a_ref_is_plain_text_in_the_thread(bot: Harness) -> None:
    """A ref that looks like a ping or a link is shown escaped: no mention, no link."""
    await bot.request("ping@example.com --ref <!channel>", email="ping@example.com")
    shown = json.dumps(bot.parents()[0])
    assert "&lt;!channel&gt;" in shown and "<!channel>" not in bot.slack.public_text()


async def test_status_finds_a_case_by_its_outside_ref(bot: Harness) -> None:
    """``status <ref>`` answers with the newest case staff gave that reference, to the asker alone."""
    await bot.request("found@example.com --ref ZD-77", email="found@example.com")
    await bot.slash("status ZD-77", user="U0BOB")
    said = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0BOB"))
    assert "f***@example.com" in text_of(said[-1])
    await bot.slash("status ZD-78", user="U0BOB")
    said = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0BOB")[1:])
    assert "ticket reference" in text_of(said[-1])


async def test_reminders_and_overdue_count_from_the_day_received(bot: Harness, clock: SettableClock) -> None:
    """Received 25 days ago with 30 days to answer: the 7-day reminder is due at once; received 40 days ago:
    overdue from the start."""
    await bot.request("soon@example.com --deadline 30d --received 2026-02-13", email="soon@example.com")
    assert await bot.runtime.workers.reminders.send_due() == 1
    await bot.request("late@example.com --deadline 30d --received 2026-01-29", email="late@example.com")
    assert (await bot.runtime.store.cases.counts()).overdue == 1


# ----------------------------------------------------------------------------- the form


async def open_form_by_command(bot: Harness, *, user: str = "U0ALICE") -> dict[str, Any]:
    response = await bot.slash("", user=user)
    assert response.status_code == 200 and ack_text(response) == "", response.text
    await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    return bot.opened_form()


async def test_a_bare_command_opens_the_form_with_every_field_for_its_channel(bot: Harness) -> None:
    """``/data-request`` alone opens the form (with the command's trigger id), and ``help`` still helps."""
    view = await open_form_by_command(bot)
    assert view["callback_id"] == FORM_VIEW and json.loads(view["private_metadata"])["channel"] == CHANNEL
    fields = {block["block_id"] for block in view["blocks"]}
    assert {"kind", "email", "received", "via", "law", "ref", "verified", "erasure_hold", "erasure_reason"} <= fields
    assert "channel" not in fields  # the command's channel is the thread's
    assert "/data-request" in ack_text(await bot.slash("help"))


async def test_a_form_with_mistakes_is_answered_beside_each_field_and_saves_nothing(bot: Harness) -> None:
    """Each wrong field gets its own words in the form; nothing is stored or started, the form stays open."""
    view = await open_form_by_command(bot)
    values = {
        "email": {"email": "not-an-email"},
        "received": {"received": "2026-03-20"},
        "ref": {"ref": "two words"},
        "erasure_hold": {"erasure_hold": "10"},  # an erasure's field, for an access request
    }
    response = await bot.submit(view, values, user="U0ALICE")
    answer = response.json()
    assert answer["response_action"] == "errors", answer
    errors = answer["errors"]
    assert set(errors) == {"email", "received", "ref", "erasure_hold"}
    assert "not an email address" in errors["email"] and "in the future" in errors["received"]
    assert "one word" in errors["ref"] and "Only for an erasure" in errors["erasure_hold"]
    assert await bot.runtime.store.cases.open() == [] and not bot.prime.starts()


async def test_a_valid_form_starts_the_request_as_the_command_would(bot: Harness) -> None:
    """A valid access form: the request is stored with its facts, its thread opens in the command's channel,
    and Amazon's task starts."""
    view = await open_form_by_command(bot)
    values = {
        "email": {"email": "formed@example.com"},
        "received": {"received": "2026-03-03"},
        "via": {"via": "form"},
        "law": {"law": "gdpr"},
        "ref": {"ref": "ZD-1"},
        "verified": {"verified": "email"},
    }
    response = await bot.submit(view, values, user="U0ALICE")
    assert response.status_code == 200 and response.text == "", response.text
    await bot.prime.wait_for(lambda: [t for t in bot.prime.tasks.values() if t.email == "formed@example.com"])
    case = await only_case(bot)
    assert (case.received_on, case.received_via, case.outside_ref, case.verified_how) == (
        "2026-03-03",
        "form",
        "ZD-1",
        "email",
    )
    assert case.channel == CHANNEL and case.deadline == "GDPR: one month" and case.due_at == midnight("2026-04-03")
    assert "ref `ZD-1`" in text_of(bot.parents()[0])


async def test_an_erasure_form_takes_its_hold_and_reason_and_refuses_a_bad_hold(bot: Harness) -> None:
    """The erasure's own fields are read as the command reads ``--hold`` and ``--reason``."""
    view = await open_form_by_command(bot)
    values: dict[str, dict[str, str]] = {
        "kind": {"kind": "erasure"},
        "email": {"email": "gone@example.com"},
        "erasure_hold": {"erasure_hold": "999"},
        "erasure_reason": {"erasure_reason": "the shopper asked by phone"},
    }
    refused = (await bot.submit(view, values, user="U0ALICE")).json()
    assert set(refused["errors"]) == {"erasure_hold"}
    values["erasure_hold"] = {"erasure_hold": "3"}
    assert (await bot.submit(view, values, user="U0ALICE")).text == ""
    await bot.slack.wait_for(lambda: bot.parents())
    case = await only_case(bot)
    assert case.kind == "erasure" and case.params["hold_days"] == "3"
    assert case.params["reason"] == "the shopper asked by phone"


async def test_a_form_sent_by_someone_not_allowed_is_refused_and_saves_nothing(bot: Harness) -> None:
    """Who may ask is decided as for the command: a bare command is refused instead of a form; the shortcut's
    form (opened before anyone is asked) is refused at submission, to the sender alone; both are audited."""
    assert "not allowed" in ack_text(await bot.slash("", user="U0MALLORY"))
    assert bot.slack.calls_to("views.open") == []
    await bot.shortcut(NEW_REQUEST_SHORTCUT, user="U0MALLORY")
    await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    values = {"email": {"email": "who@example.com"}, "channel": {"channel": CHANNEL}}
    await bot.submit(bot.opened_form(), values, user="U0MALLORY")
    said = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0MALLORY"))
    assert "not allowed" in text_of(said[0])
    assert await bot.runtime.store.cases.open() == []
    refusals = [e for e in await bot.runtime.store.audit.entries() if e.action == "refused"]
    assert [e.actor for e in refusals] == ["U0MALLORY", "U0MALLORY"]


async def test_the_shortcut_opens_the_form_with_a_channel_picker_that_must_be_filled(bot: Harness) -> None:
    """The "New data request" shortcut has no channel: its form asks for one (not a direct message) and the
    thread opens there."""
    assert (await bot.shortcut(NEW_REQUEST_SHORTCUT)).status_code == 200
    await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    view = bot.opened_form()
    picker = next(b for b in view["blocks"] if b["block_id"] == "channel")["element"]
    assert picker["type"] == "conversations_select" and picker["default_to_current_conversation"] is True
    values = {"email": {"email": "picked@example.com"}, "channel": {"channel": "D0DIRECT"}}
    assert set((await bot.submit(view, values, user="U0ALICE")).json()["errors"]) == {"channel"}
    values["channel"] = {"channel": "C0OTHER"}
    assert (await bot.submit(view, values, user="U0ALICE")).text == ""
    parent = await bot.slack.wait_for(lambda: bot.parents("C0OTHER"))
    assert "p***@example.com" in text_of(parent[0])


async def test_a_shortcut_form_for_a_channel_without_the_bot_says_so_to_the_sender(bot: Harness) -> None:
    """The bot not in the picked channel: the sender is told the same words as for the command."""
    bot.slack.not_in.add("C0NOBOT")
    await bot.shortcut(NEW_REQUEST_SHORTCUT)
    await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    values = {"email": {"email": "nobot@example.com"}, "channel": {"channel": "C0NOBOT"}}
    await bot.submit(bot.opened_form(), values, user="U0ALICE")
    said = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE"))
    assert "I'm not a member of this channel" in text_of(said[-1])
