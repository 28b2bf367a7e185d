"""``/data-request`` as units: what each text reads into, and what each intent does, without a running bot.

No web server, no Bolt, no Slack: ``handle_command`` is called with an ``ack`` and a ``respond`` that
record what they are given, over a temp store, so a wrong decision fails here with the message that
was given instead of the one expected (not with a timeout waiting for a post that never comes).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from harness import SettableClock
from slack_sdk.web.async_client import AsyncWebClient

from core import Background, RequestKind, StoreUnavailable
from handlers import notices, texts
from handlers.commands import (
    LIST_LIMIT,
    Extend,
    Help,
    Invalid,
    ListOpen,
    OpenForm,
    Start,
    Status,
    handle_command,
    parse_command,
)
from handlers.deadlines import DeadlineSpec
from handlers.desk import Desk, Permalinks
from handlers.flow import Flow
from handlers.kinds.registry import KINDS
from handlers.kinds.retrieval import RETRIEVAL_FLOW
from handlers.texts import casework
from handlers.workers.access import Authorizer
from prime import Operations, TaskState
from store import OPENS_THREAD, EmailCipher, Request, RequestStatus, Store

EMAIL = "jane.shopper@example.com"
NOW = 1_800_000_000.0

RETRIEVAL = RequestKind.RETRIEVAL


def duplicate(first: Request) -> texts.Message:
    """What a duplicate of ``first`` is answered: the retrieval's words and window."""
    return texts.duplicate_request(first, RETRIEVAL_FLOW.texts, window=RETRIEVAL_FLOW.duplicate_window, permalink=None)


HELP_KINDS = [kind.texts for kind in KINDS.values()]

# ----------------------------------------------------------------------------- parsing: text -> intent


@pytest.mark.parametrize("text", ["help", "HELP", "-h", "--help", "help me"])
def test_every_spelling_of_help_reads_as_help(text: str) -> None:
    """Every spelling of help asks for the help text."""
    assert parse_command(text, KINDS) == Help()


@pytest.mark.parametrize("text", ["", "   "])
def test_nothing_opens_the_form(text: str) -> None:
    """An empty command asks for the new-request form."""
    assert parse_command(text, KINDS) == OpenForm()


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        (EMAIL, Start(EMAIL, RETRIEVAL)),
        (f"<mailto:{EMAIL}|{EMAIL}>", Start(EMAIL, RETRIEVAL)),  # how Slack sends a typed address
        (f"{EMAIL} --new", Start(EMAIL, RETRIEVAL, force_new=True)),
        (f"--NEW {EMAIL}", Start(EMAIL, RETRIEVAL, force_new=True)),
        (f"{EMAIL} gdpr", Start(EMAIL, RETRIEVAL, deadline=DeadlineSpec(jurisdiction="gdpr"))),
        (f"CCPA {EMAIL}", Start(EMAIL, RETRIEVAL, deadline=DeadlineSpec(jurisdiction="ccpa"))),
        (f"{EMAIL} --deadline 45d", Start(EMAIL, RETRIEVAL, deadline=DeadlineSpec(days=45))),
        (f"{EMAIL} --deadline 10", Start(EMAIL, RETRIEVAL, deadline=DeadlineSpec(days=10))),
        ("status jane@example.com", Status("jane@example.com")),
        ("STATUS task-1", Status("task-1")),
        ("extend task-1 45d", Extend("task-1", 45)),
        ("extend task-1 60 --again", Extend("task-1", 60, again=True)),
        ("extend --again task-1 60d", Extend("task-1", 60, again=True)),
        ("list", ListOpen()),
        ("list all", ListOpen(whole_team=True)),
        ("LIST ALL", ListOpen(whole_team=True)),
    ],
)
def test_each_command_reads_into_its_intent(text: str, intent: object) -> None:
    """Every form staff type reads into the intent it means, flags in any place and any case."""
    assert parse_command(text, KINDS) == intent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status", texts.usage_error("`status` takes one email, task id or ticket reference.")),
        ("status a b", texts.usage_error("`status` takes one email, task id or ticket reference.")),
        (
            "extend task-1",
            texts.usage_error(
                "`extend` takes an email or task id and a number of days, like `45d` (and `--again` "
                "for a second extension, `--told` once the shopper is told of it)."
            ),
        ),
        (
            "extend task-1 400d",
            texts.usage_error(
                "`extend` takes an email or task id and a number of days, like `45d` (and `--again` "
                "for a second extension, `--told` once the shopper is told of it)."
            ),
        ),
        ("list mine", texts.usage_error("`list` shows your open requests; `list all` shows the team's.")),
        ("list all now", texts.usage_error("`list` shows your open requests; `list all` shows the team's.")),
        (f"{EMAIL} --deadline", texts.usage_error("`--deadline` takes a number of days from 1 to 365, like `45d`.")),
        (f"{EMAIL} --deadline 0d", texts.usage_error("`--deadline` takes a number of days from 1 to 365, like `45d`.")),
        (f"{EMAIL} --deadline 45d gdpr", texts.usage_error("Give either `gdpr` or `--deadline`, not both.")),
        (f"{EMAIL} --urgent", texts.unknown_option("--urgent")),
        (f"{EMAIL} other@example.com", texts.usage_error("Give one shopper email per request.")),
        ("--new", texts.usage_error("Give one shopper email per request.")),
        ("not-an-email", texts.invalid_email("not-an-email")),
    ],
)
def test_mistakes_read_into_the_answer_that_explains_them(text: str, expected: texts.Message) -> None:
    """Each mistake becomes an ``Invalid`` carrying the exact words that say what to type instead."""
    assert parse_command(text, KINDS) == Invalid(expected)


# ----------------------------------------------------------------------------- acting on an intent


class NoAmazon:
    """Buy with Prime for a test that must not reach it: any call fails the test, naming the call."""

    async def start_task(
        self, operations: Operations, *, email: str, client_token: str, extra: Mapping[str, Any] | None = None
    ) -> str:
        raise AssertionError("the command asked Amazon to start a task")

    async def task(self, operations: Operations, task_id: str) -> TaskState:
        raise AssertionError(f"the command asked Amazon about task {task_id}")


@dataclass
class Said:
    """What the command answered: in its acknowledgement (``acks``) and afterwards, to the user alone."""

    acks: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    requests_at_ack: list[int] = field(default_factory=list)  # requests stored when the ack went out


@dataclass
class Desktop:
    """A ``Desk`` over a temp store, and a way to run one command through it to the end."""

    desk: Desk
    store: Store
    clock: SettableClock

    async def command(self, text: str, *, user: str = "U0ALICE") -> Said:
        """Run ``/data-request text`` as ``user``; return once its background work has finished too."""
        said = Said()

        async def ack(**message: Any) -> None:
            said.acks.append(message)
            said.requests_at_ack.append(len(await self.store.requests.for_email(EMAIL)))

        async def respond(**message: Any) -> None:
            assert message.pop("response_type") == "ephemeral" and message.pop("replace_original") is False
            said.replies.append(message)

        command = {"text": text, "user_id": user, "user_name": user.lower(), "channel_id": "C0COMPLY"}
        desk = replace(self.desk, background=Background())  # this command's background work, and only its
        await handle_command(desk, ack=ack, command=command, respond=respond)  # type: ignore[arg-type]
        assert await desk.background.drain(5.0) == 0, "the command's background work did not finish"
        return said


@pytest.fixture
async def desktop(tmp_path: Path) -> AsyncIterator[Desktop]:
    clock = SettableClock(NOW)
    store = await Store.open(tmp_path / "requests.db", cipher=EmailCipher(os.urandom(32)), clock=clock)
    slack = AsyncWebClient(token="xoxb-not-used", base_url="http://127.0.0.1:9/")  # nothing here calls Slack
    flow = Flow(
        store=store,
        prime=NoAmazon(),
        reconcile_interval=3600.0,
        retry_soon=0.0,
        retry_cap=0.0,
        kinds=KINDS,
        clock=clock,
    )
    desk = Desk(
        flow=flow,
        slack=slack,
        authorizer=Authorizer(allowed_users=frozenset({"U0ALICE", "U0BOB"}), usergroup=None, slack=slack),
        background=Background(),
        permalinks=Permalinks(slack),
        deadline_days=30,
        verification_required=False,
    )
    try:
        yield Desktop(desk, store, clock)
    finally:
        await store.close()


async def test_help_is_the_acknowledgement_itself(desktop: Desktop) -> None:
    """``help`` is answered in the ack with the help text, and nothing is stored or audited."""
    said = await desktop.command("help")
    assert said.acks == [texts.help_message(HELP_KINDS, everyone_allowed=False)] and said.replies == []
    assert await desktop.store.audit.entries() == []


async def test_a_mistake_is_the_acknowledgement_itself(desktop: Desktop) -> None:
    """A typo is answered in the ack with what to type instead; nothing is stored."""
    said = await desktop.command(f"{EMAIL} --urgent")
    assert said.acks == [texts.unknown_option("--urgent")] and said.replies == []
    assert said.requests_at_ack == [0] and await desktop.store.audit.entries() == []


async def test_a_new_request_is_stored_before_it_is_acknowledged(desktop: Desktop) -> None:
    """The request is in the store when the empty ack goes out, with its deadline and its thread's first
    message queued; Amazon is not asked before the thread is open (no outbox here sends it)."""
    said = await desktop.command(f"{EMAIL} --deadline 45d")
    assert said.acks == [{}] and said.requests_at_ack == [1] and said.replies == []
    (request,) = await desktop.store.requests.for_email(EMAIL)
    assert (request.requester, request.channel, request.status) == ("U0ALICE", "C0COMPLY", RequestStatus.NEW)
    assert (request.deadline, request.due_at) == ("45 days", NOW + 45 * 86_400)
    assert request.email_masked == "j***@example.com"
    (opener,) = await desktop.store.outbox.due(request_id=request.id)
    posted = notices.render(opener, KINDS)  # what the outbox will send: the thread's first message, in the channel
    assert posted.method == "chat.postMessage" and posted.payload["channel"] == "C0COMPLY"
    assert opener.purpose == OPENS_THREAD


async def test_without_a_deadline_the_configured_default_applies(desktop: Desktop) -> None:
    """With no keyword and no ``--deadline``, the due date is RESPONSE_DEADLINE_DAYS away (the Desk's)."""
    await desktop.command(EMAIL)
    (request,) = await desktop.store.requests.for_email(EMAIL)
    assert (request.deadline, request.due_at) == ("30 days, the default", NOW + 30 * 86_400)


async def test_a_user_not_allowed_is_refused_in_the_ack_and_audited(desktop: Desktop) -> None:
    """Someone outside ALLOWED_USERS gets the refusal as the ack; the refusal is audited; nothing is stored."""
    said = await desktop.command(EMAIL, user="U0MALLORY")
    assert said.acks == [texts.not_allowed("")] and said.requests_at_ack == [0]
    (entry,) = await desktop.store.audit.entries()
    assert (entry.actor, entry.action, entry.detail) == ("U0MALLORY", "refused", "request: not allowed")


async def test_a_second_request_for_the_same_shopper_is_refused_as_a_duplicate(desktop: Desktop) -> None:
    """Within the window, the same shopper again is acknowledged, then refused to the user alone and audited."""
    await desktop.command(EMAIL)
    (first,) = await desktop.store.requests.for_email(EMAIL)
    said = await desktop.command(EMAIL.upper(), user="U0BOB")
    assert said.acks == [{}] and said.replies == [duplicate(first)]
    assert len(await desktop.store.requests.for_email(EMAIL)) == 1
    refused = [e for e in await desktop.store.audit.entries() if e.action == "refused"]
    assert [(e.actor, e.request_id) for e in refused] == [("U0BOB", first.id)]


async def test_new_flag_stores_a_second_request_for_the_same_shopper(desktop: Desktop) -> None:
    """``--new`` is the way past the duplicate rule: a second request is stored, not refused."""
    await desktop.command(EMAIL)
    said = await desktop.command(f"{EMAIL} --new")
    assert said.replies == [] and len(await desktop.store.requests.for_email(EMAIL)) == 2


async def test_a_request_the_database_refuses_is_answered_in_the_ack(desktop: Desktop) -> None:
    """When the store refuses the write, the user is told at once that nothing was saved (no silence, no 500)."""
    refused = StoreUnavailable("disk I/O error")
    with mock.patch.object(desktop.store.requests, "create", side_effect=refused):
        said = await desktop.command(EMAIL)
    assert said.acks == [texts.cannot_save()] and said.replies == []


async def test_status_of_an_unknown_shopper_says_so_after_the_ack(desktop: Desktop) -> None:
    """``status`` acknowledges at once and answers in the background: here, that nothing is known."""
    said = await desktop.command("status nobody@example.com")
    assert said.acks == [{}] and said.replies == [texts.unknown_request("`n***@example.com`")]


async def test_status_of_a_request_answers_with_its_state_and_is_audited(desktop: Desktop) -> None:
    """``status`` with the shopper's email shows that request's state, and who looked is audited."""
    await desktop.command(EMAIL)
    (request,) = await desktop.store.requests.for_email(EMAIL)
    said = await desktop.command(f"status {EMAIL}", user="U0BOB")
    assert said.replies == [texts.status_message(request, RETRIEVAL_FLOW.texts, permalink=None, now=NOW)]
    assert ("U0BOB", "status viewed") in [(e.actor, e.action) for e in await desktop.store.audit.entries()]


async def test_status_by_someone_not_allowed_is_refused_and_audited(desktop: Desktop) -> None:
    """Looking is an action like any other: refused to someone not allowed, and the refusal audited."""
    said = await desktop.command(f"status {EMAIL}", user="U0MALLORY")
    assert said.acks == [{}] and said.replies == [texts.not_allowed("")]
    (entry,) = await desktop.store.audit.entries()
    assert (entry.actor, entry.detail) == ("U0MALLORY", "status: not allowed")


async def test_extending_a_request_not_started_is_refused(desktop: Desktop) -> None:
    """A deadline is extended only once Amazon has the request; before that the user is told why not."""
    await desktop.command(EMAIL)
    (request,) = await desktop.store.requests.for_email(EMAIL)
    said = await desktop.command(f"extend {EMAIL} 60d")
    assert said.acks == [{}] and said.replies == [casework.cannot_extend_unstarted(request)]


async def test_list_shows_only_the_users_own_open_requests(desktop: Desktop) -> None:
    """``list`` answers with the asker's open requests; ``list all`` with the team's."""
    await desktop.command(EMAIL)
    await desktop.command("other.shopper@example.com", user="U0BOB")
    mine = await desktop.store.cases.open(requester="U0ALICE", limit=LIST_LIMIT + 1)
    team = await desktop.store.cases.open(requester=None, limit=LIST_LIMIT + 1)
    assert len(mine) == 1 and len(team) == 2
    said = await desktop.command("list")
    assert said.replies == [casework.open_cases_message(mine, whole_team=False, more=None, now=NOW, permalinks={})]
    said = await desktop.command("list all")
    assert said.replies == [casework.open_cases_message(team, whole_team=True, more=None, now=NOW, permalinks={})]
