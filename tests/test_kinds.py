"""A request has a kind: the shared steps follow the kind's entry, so a new kind is added, not threaded through.

A kind made up here, in the test alone ("probe": Amazon's deletion operations, its own statuses, moves,
texts, options, button and free-text param), is handed to the handlers, or to the whole bot, in a
registry of its own. Nothing in bot/, handlers/, store/ or prime/ knows it, yet a signed command starts
one, Amazon gets its documents and options,
the thread says its words, the relay takes its events, and its moves, not retrieval's, decide what
Amazon's answers do. The store keys the duplicate rule on (kind, shopper), and an older database gets
the kind column with its rows read as retrievals.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
import pytest
from fakes import FakePrime, FakeSlack, block_actions_body, buttons, text_of
from harness import envelope, running_bot
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from core import Background, RequestKind, RetryPolicy
from handlers import notices
from handlers.buttons import VERIFY_ACTION
from handlers.commands import Invalid, Start, handle_command, parse_command
from handlers.desk import Desk, Permalinks
from handlers.flow import Flow
from handlers.kinds import KindFlow, KindTexts, Move
from handlers.kinds.registry import KINDS, free_text, opened
from handlers.kinds.retrieval import RETRIEVAL_FLOW
from handlers.lifecycle import Synced, apply_task_state, sync_task
from handlers.register import register
from handlers.relay import parse_event
from handlers.texts.blocks import Block, Message, actions, button
from handlers.workers.access import Authorizer
from handlers.workers.home import HomeTab
from handlers.workers.outbox import OutboxSender
from prime import Operations, PrimeClient, TaskState
from store import EmailCipher, Request, RequestStatus, Store

PROBE = "probe"
POKE_ACTION = "probe_poke"
EMAIL = "jane.shopper@example.com"

PROBE_OPERATIONS = Operations(
    kind=PROBE,
    start_document=(
        "mutation StartProbe($input: StartPersonalDataDeletionTaskInput!) {"
        " startPersonalDataDeletionTask(input: $input) { taskId } }"
    ),
    start_field="startPersonalDataDeletionTask",
    task_document=(
        "query Probe($taskId: String!) { personalDataDeletionTask(taskId: $taskId) {"
        " taskId status submissionDate lastUpdatedDate errors { code message } } }"
    ),
    task_field="personalDataDeletionTask",
    events=frozenset({"PERSONAL_DATA_DELETION_TASK_COMPLETED", "PERSONAL_DATA_DELETION_TASK_FAILED"}),
)


class ProbeTexts(KindTexts):
    """The probe's own words: every one of them says "probe", so the test sees whose words were used."""

    title = "Probe request"
    status_lines = MappingProxyType({status: f"probe status {status.value}" for status in RequestStatus})

    def reply(self, name: str, request: Request) -> Message | None:
        return {"text": f"probe reply {name} for {request.task_id}"} if name in ("done", "rejected") else None

    def help(self, command: str) -> str:
        return f"*`{command} probe <shopper email> --hold Nd`*: a probe.\n"

    def start_command(self, subject: str) -> str:
        return f"/data-request probe {subject}"

    def extra_fields(self, request: Request) -> list[tuple[str, str]]:
        return [("Probe hold", f"{request.params.get('hold', '?')} days")]

    def parent_actions(self, request: Request) -> list[Block]:
        return [actions(f"probe-{request.id}", button("Poke", action_id=POKE_ACTION, value=str(request.id)))]


def probe_options(words: Sequence[str]) -> tuple[dict[str, str], list[str]] | str:
    """``--hold Nd``, the probe's one option of its own."""
    rest, params = list(words), {}
    if "--hold" in rest:
        at = rest.index("--hold")
        days = rest[at + 1].removesuffix("d") if at + 1 < len(rest) else ""
        if not days.isdigit():
            return "`--hold` takes a number of days."
        params["hold"] = days
        del rest[at : at + 2]
    return params, rest


@dataclass
class Pokes:
    """The probe's button handler: records what it was given, as Bolt would call it."""

    bodies: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, deps: Desk, *, ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        self.bodies.append(body)


POKES = Pokes()
PROBE_FLOW = KindFlow(
    operations=PROBE_OPERATIONS,
    texts=ProbeTexts(),
    # Unlike a retrieval, a completed probe is final: Amazon failing it afterwards changes nothing.
    moves={"COMPLETED": Move(frozenset({RequestStatus.IN_PROGRESS}), RequestStatus.COMPLETED, "probed", reply="done")},
    waiting=frozenset({"ON_HOLD", "IN_PROGRESS"}),
    duplicate_window=0.0,
    actions={POKE_ACTION: POKES},
    verb=PROBE,
    options=probe_options,
    start_params=lambda request: {"holdingPeriod": int(request.params["hold"])},
    free_text=frozenset({"hold"}),  # as if staff could write anything there: erased with the email
)
# The probe borrows Amazon's deletion operations, so it stands beside retrieval alone (not the real erasure).
ONLY_RETRIEVAL = MappingProxyType({RequestKind.RETRIEVAL: RETRIEVAL_FLOW})
KINDS_WITH_PROBE = MappingProxyType({**ONLY_RETRIEVAL, PROBE: PROBE_FLOW})


@dataclass
class Rig:
    """The handlers' edges, built as the runtime builds them, with the probe in ``kinds``."""

    desk: Desk
    slack: FakeSlack
    prime: FakePrime
    store: Store

    @property
    def flow(self) -> Flow:
        return self.desk.flow


@asynccontextmanager
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with FakeSlack() as slack, FakePrime() as prime, httpx.AsyncClient(timeout=10) as http:
        store = await Store.open(tmp_path / "requests.db", cipher=EmailCipher(os.urandom(32)))
        web = AsyncWebClient(token=slack.token, base_url=slack.api_url)
        outbox = OutboxSender(
            store=store,
            slack=web,
            render=partial(notices.render, kinds=KINDS_WITH_PROBE),
            opened=opened(KINDS_WITH_PROBE),
        )
        client = PrimeClient(
            http=http,
            api_url=prime.api_url,
            token_url=prime.token_url,
            client_id=prime.client_id,
            client_secret=prime.client_secret,
            target_id=prime.target_id,
            api_version="2024-11-01",
            retry=RetryPolicy(attempts=1),
            on_secret=lambda _token: None,
        )
        flow = Flow(
            store=store,
            prime=client,
            reconcile_interval=3600,
            retry_soon=60,
            retry_cap=60,
            kinds=KINDS_WITH_PROBE,
            open_thread=outbox.send_for,
        )
        store.after_commit(lambda commit: outbox.wake() if commit.outbox else None)
        desk = Desk(
            flow=flow,
            slack=web,
            authorizer=Authorizer(allowed_users=frozenset({"U0ALICE"}), usergroup=None, slack=web),
            background=Background(),
            permalinks=Permalinks(web),
            deadline_days=30,
            verification_required=False,
        )
        sender = asyncio.create_task(outbox.run())
        try:
            yield Rig(desk, slack, prime, store)
        finally:
            await desk.background.drain(5)
            sender.cancel()
            await store.close()
        assert not prime.invalid, prime.invalid
        assert not slack.invalid_blocks, slack.invalid_blocks


async def command(deps: Desk, text: str) -> list[dict[str, Any]]:
    """Run ``/data-request <text>`` as U0ALICE through the command handler; return what ack() was given."""
    acked: list[dict[str, Any]] = []

    async def ack(**message: Any) -> None:
        acked.append(message)

    async def respond(**message: Any) -> None:
        acked.append(message)

    body = {"text": text, "user_id": "U0ALICE", "user_name": "alice", "channel_id": "C0COMPLY"}
    await handle_command(deps, ack=ack, command=body, respond=respond)  # type: ignore[arg-type]
    return acked


def test_the_command_reads_a_new_kind_by_its_verb_with_its_own_options() -> None:
    """``probe <email> --hold 3d`` is a probe with its params; a bare email stays a retrieval; bad options say why."""
    probe = parse_command(f"probe {EMAIL} --hold 3d gdpr", KINDS_WITH_PROBE)
    assert isinstance(probe, Start)
    assert (probe.kind, dict(probe.params), probe.email, probe.deadline.jurisdiction) == (
        PROBE,
        {"hold": "3"},
        EMAIL,
        "gdpr",
    )
    plain = parse_command(EMAIL, KINDS_WITH_PROBE)
    assert isinstance(plain, Start) and plain.kind == RequestKind.RETRIEVAL and dict(plain.params) == {}
    bad = parse_command(f"probe {EMAIL} --hold soon", KINDS_WITH_PROBE)
    assert isinstance(bad, Invalid) and "`--hold` takes a number of days." in bad.message["text"]
    # Without the probe in the registry, its verb is just a word: not one email, so a usage error.
    assert isinstance(parse_command(f"probe {EMAIL}", KINDS), Invalid)


async def test_a_kind_made_up_in_a_test_runs_through_the_shared_steps(tmp_path: Path) -> None:
    """Command, thread, start, query, move and reply all follow the probe's entry; none of it is retrieval's."""
    async with rig(tmp_path) as r:
        assert await command(r.desk, f"probe {EMAIL} --hold 3d") == [{}]
        task = r.prime.tasks[await r.prime.wait_for(lambda: r.prime.deletion_tasks()[0])]
        assert (task.kind, task.email, task.holding_period) == ("deletion", EMAIL, 3)  # its documents, its option
        await r.slack.wait_for(lambda: "probe status IN_PROGRESS" in json.dumps(r.slack.updates()))
        (request,) = await r.store.requests.for_email(EMAIL)
        assert (request.kind, dict(request.params), request.task_id) == (PROBE, {"hold": "3"}, task.task_id)
        parent = r.slack.posts("C0COMPLY")[0]
        opened = text_of(parent)
        assert "Probe request" in opened and "Probe hold" in opened and "3 days" in opened
        assert [b["action_id"] for b in buttons(parent)] == [POKE_ACTION, VERIFY_ACTION]  # its button, then the case's

        # ON_HOLD is a status the probe waits through: nothing moves, nothing is queued.
        assert await sync_task(r.flow, request.id) is Synced.ANSWERED
        assert (await r.store.requests.get(request.id)).status is RequestStatus.IN_PROGRESS  # type: ignore[union-attr]
        assert await r.store.outbox.due() == []

        r.prime.complete(task.task_id)
        assert await sync_task(r.flow, request.id) is Synced.ANSWERED
        done = await r.store.requests.get(request.id)
        assert done is not None and done.status is RequestStatus.COMPLETED
        replies = await r.slack.wait_for(
            lambda: [p for p in r.slack.posts("C0COMPLY") if p.get("thread_ts") == parent["ts"]]
        )
        assert [p["text"] for p in replies] == [f"probe reply done for {task.task_id}"]
        await r.slack.wait_for(lambda: "probe status COMPLETED" in text_of(r.slack.updates()[-1]))
        assert "probed" in [e.action for e in await r.store.audit.entries(request_id=request.id)]
        assert r.prime.starts() == [] and r.prime.queries() == []  # never started or asked as a retrieval
        assert len(r.prime.deletion_starts()) == 1 and r.prime.deletion_queries()


async def test_the_moves_are_the_kinds_not_the_lifecycles(tmp_path: Path) -> None:
    """A retrieval that completed can still fail (its table says so); a completed probe cannot (its table does not)."""
    async with rig(tmp_path) as r:
        for kind in (RequestKind.RETRIEVAL, PROBE):
            request, _ = await r.store.requests.create(
                kind=kind,
                email=f"{kind}@example.com",
                email_masked="x***@example.com",
                requester="U0ALICE",
                channel="C0COMPLY",
                due_at=time.time() + 86_400,
                deadline="1 days",
                params={"hold": "0"},
            )
            await r.store.outbox.thread_opened(request.id, "1700000000.000100")
            started = await r.store.requests.record_task_started(request.id, f"task-{kind}", notices=())

            def amazon(status: str, task_id: str = f"task-{kind}") -> TaskState:
                return TaskState(task_id=task_id, status=status, submitted="", updated="")

            completed = await apply_task_state(r.flow, started, amazon("COMPLETED"))
            assert completed.status is RequestStatus.COMPLETED
            after = await apply_task_state(r.flow, completed, amazon("FAILED"))
            expected = RequestStatus.FAILED if kind == RequestKind.RETRIEVAL else RequestStatus.COMPLETED
            assert after.status is expected, kind
            assert (await apply_task_state(r.flow, after, amazon("SOMETHING_NEW"))).status is expected
        assert RETRIEVAL_FLOW.ask_amazon == {RequestStatus.IN_PROGRESS, RequestStatus.COMPLETED}
        assert PROBE_FLOW.ask_amazon == {RequestStatus.IN_PROGRESS}


def test_the_relay_takes_the_event_types_of_the_kinds_it_is_given() -> None:
    """A deletion event names a probe's task when the probe is registered, and is ignored (2xx) when it is not."""
    event = envelope("PERSONAL_DATA_DELETION_TASK_COMPLETED", "task-9")
    event["resources"] = ["businessProduct/amzn1.bp.test/personalDataDeletionTask/task-9"]
    raw = json.dumps(event).encode()
    taken = parse_event(raw, KINDS_WITH_PROBE)
    assert (taken.task_id, taken.kind) == ("task-9", PROBE)
    ignored = parse_event(raw, ONLY_RETRIEVAL)
    assert (ignored.task_id, ignored.kind) == (None, None)
    retrieval = parse_event(json.dumps(envelope("PERSONAL_DATA_RETRIEVAL_TASK_FAILED", "task-1")).encode(), KINDS)
    assert (retrieval.task_id, retrieval.kind) == ("task-1", RequestKind.RETRIEVAL)


def test_every_kind_has_a_voice_for_every_status_and_buttons_of_its_own() -> None:
    """Each registered kind names a status line for every status, and no two kinds claim one action id."""
    claimed: list[str] = []
    for flow in KINDS_WITH_PROBE.values():
        assert set(flow.texts.status_lines) >= set(RequestStatus), flow.kind
        claimed += list(flow.actions)
        assert flow.operations.kind == flow.kind
    assert len(claimed) == len(set(claimed)), claimed


async def test_the_duplicate_rule_is_per_kind_and_shopper(store_path: Path) -> None:
    """A retrieval does not block a probe for the same shopper, nor the other way; one of the same kind does."""
    store = await Store.open(store_path, cipher=EmailCipher(os.urandom(32)))
    try:

        async def ask(kind: str, window: float) -> tuple[Request, bool]:
            return await store.requests.create(
                kind=kind,
                email=EMAIL,
                email_masked="j***@example.com",
                requester="U0ALICE",
                channel="C0COMPLY",
                due_at=time.time() + 86_400,
                deadline="1 days",
                duplicate_window=window,
            )

        retrieval, created = await ask(RequestKind.RETRIEVAL, 8 * 3600)
        assert created
        probe, created = await ask(PROBE, 0.0)
        assert created and probe.id != retrieval.id and probe.kind == PROBE
        again, created = await ask(RequestKind.RETRIEVAL, 8 * 3600)
        assert not created and again.id == retrieval.id
        again, created = await ask(PROBE, 0.0)
        assert not created and again.id == probe.id
        # A request that never started is no duplicate, whatever its kind.
        await store.requests.abandon(probe.id, actor="bot", reason="test")
        fresh, created = await ask(PROBE, 0.0)
        assert created and fresh.id not in (probe.id, retrieval.id)
        assert [r.kind for r in await store.requests.for_email(EMAIL, kind=PROBE)] == [PROBE, PROBE]
        assert len(await store.requests.for_email(EMAIL)) == 3
    finally:
        await store.close()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "requests.db"


async def test_a_kinds_buttons_are_registered_with_the_rest(tmp_path: Path) -> None:
    """``register`` routes the probe's Poke to the probe's handler, from its entry alone; without it, Bolt's 404."""
    async with rig(tmp_path) as r:

        async def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
            return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token="xoxb-t")

        home = HomeTab(
            store=r.store,
            slack=r.desk.slack,
            permalinks=r.desk.permalinks,
            authorizer=r.desk.authorizer,
            background=r.desk.background,
            clock=time.time,
        )
        body = block_actions_body(
            user="U0ALICE",
            channel="C0COMPLY",
            message_ts="1700000000.000100",
            action_id=POKE_ACTION,
            value="7",
            block_id="probe-7",
            response_url=r.slack.response_url("U0ALICE"),
        )
        form = {"content-type": ["application/x-www-form-urlencoded"]}
        for desk, expected in ((r.desk, 200), (replace(r.desk, flow=replace(r.flow, kinds=KINDS)), 404)):
            app = AsyncApp(authorize=authorize, request_verification_enabled=False, process_before_response=True)
            register(app, desk, home=home)
            before = len(POKES.bodies)
            response = await app.async_dispatch(AsyncBoltRequest(body=body, headers=form))
            assert response.status == expected, response.body
            poked = POKES.bodies[before:]
            assert [b["actions"][0]["value"] for b in poked] == (["7"] if expected == 200 else [])


async def test_a_third_kind_runs_in_the_real_bot_from_its_registration_alone(tmp_path: Path) -> None:
    """The whole bot, handed a registry with the probe: a signed command opens its thread in its words and starts
    it with Amazon's deletion documents, a relayed deletion event ends it with its own reply, and its button is
    routed to its handler."""
    async with running_bot(tmp_path, kinds=KINDS_WITH_PROBE) as h:
        task_id, parent = await h.request(f"probe {EMAIL} --hold 2d", email=EMAIL)
        task = h.prime.tasks[task_id]
        assert (task.kind, task.holding_period) == ("deletion", 2)
        assert "Probe request" in text_of(parent)
        assert [b["action_id"] for b in buttons(parent)] == [POKE_ACTION, VERIFY_ACTION]

        h.prime.complete(task_id)
        event = envelope("PERSONAL_DATA_DELETION_TASK_COMPLETED", task_id, task_field="personalDataDeletionTask")
        answer = await h.relay(event)
        assert (answer.status_code, answer.json()) == (200, {"status": "stored"})
        replies = await h.slack.wait_for(lambda: h.replies(parent["ts"]))
        assert [r["text"] for r in replies] == [f"probe reply done for {task_id}"]
        await h.slack.wait_for(lambda: "probe status COMPLETED" in text_of(h.slack.updates()[-1]))

        before = len(POKES.bodies)
        assert (await h.press(parent, POKE_ACTION)).status_code == 200
        assert [b["actions"][0]["action_id"] for b in POKES.bodies[before:]] == [POKE_ACTION]
        assert h.prime.starts() == [] and h.prime.queries() == []  # never started or asked as a retrieval


async def test_what_a_kind_calls_free_text_is_erased_at_retention_and_nothing_else(store_path: Path) -> None:
    """The store erases the params the kinds name (the probe's ``hold``), and keeps every other param."""
    store = await Store.open(store_path, cipher=EmailCipher(os.urandom(32)))
    try:
        request, _ = await store.requests.create(
            kind=PROBE,
            email=EMAIL,
            email_masked="j***@example.com",
            requester="U0ALICE",
            channel="C0COMPLY",
            due_at=time.time() + 86_400,
            deadline="1 days",
            params={"hold": "3", "kept": "yes"},
        )
        await store.requests.abandon(request.id, actor="bot", reason="test")
        free = free_text(KINDS_WITH_PROBE)
        assert free == {"hold"} and free_text(KINDS) == {"reason", "reject_reason"}  # the erasure names its own
        assert await store.cases.purge_expired(older_than=time.time() + 1, free_text=free) == [request.id]
        purged = await store.requests.get(request.id)
        assert purged is not None and dict(purged.params) == {"kept": "yes"}
    finally:
        await store.close()
