"""The store on a real SQLite file: emails sealed at rest, an append-only audit log, one state change per task."""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import closing
from pathlib import Path

import pytest
from fakes import text_of
from harness import SettableClock, envelope, running_bot

from core import ConfigError, DataRequestError, EmailUnreadable, RequestKind
from handlers.kinds.retrieval import RETRIEVAL_FLOW
from store import (
    OPENS_THREAD,
    Commit,
    EmailCipher,
    Notice,
    Request,
    RequestStatus,
    Store,
    TaskError,
    create_key_file,
    read_key_file,
)
from store._schema import VERSION, migrate

EMAIL = "Jane.Shopper@Example.com"
DAY = 86_400.0


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(1_700_000_000.0)


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
async def store(database_at: Path | str, key: bytes, clock: SettableClock) -> AsyncIterator[Store]:
    """The store on each backend in turn (tests/conftest.py ``database_at``)."""
    opened = await Store.open(database_at, cipher=EmailCipher(key), clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path, key: bytes, clock: SettableClock) -> AsyncIterator[Store]:
    """The store on a SQLite file, for what is about that file's bytes."""
    opened = await Store.open(tmp_path / "requests.db", cipher=EmailCipher(key), clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


async def create(
    store: Store,
    email: str = EMAIL,
    *,
    kind: str = RequestKind.RETRIEVAL,
    requester: str = "U0ALICE",
    duplicate_window: float | None = None,
    notices: Sequence[Notice] = (),
) -> tuple[Request, bool]:
    """Store a request the way the slash command does; the request, and whether it is new (not a duplicate)."""
    return await store.requests.create(
        kind=kind,
        email=email,
        email_masked=email[0] + "***@" + email.split("@")[1],
        requester=requester,
        channel="C0COMPLY",
        due_at=1_700_000_000.0 + 30 * DAY,
        deadline="30 days",
        duplicate_window=duplicate_window,
        notices=notices,
    )


async def new_request(store: Store, email: str = EMAIL, *, requester: str = "U0ALICE") -> Request:
    """A new request, stored the way the slash command does."""
    request, created = await create(store, email, requester=requester)
    assert created
    return request


async def amazon_says(
    store: Store,
    request_id: int,
    status: RequestStatus,
    errors: Sequence[TaskError] = (),
    *,
    notices: Sequence[Notice],
) -> Request | None:
    """Amazon's task status applied as a retrieval's moves say (``RETRIEVAL_FLOW``), through the store's one move."""
    move = RETRIEVAL_FLOW.moves.get(status.value)
    if move is None:
        return None
    moved = await store.requests.record_task_state(
        request_id, from_=move.from_, to=move.to, errors=errors, action=move.action, notices=notices
    )
    return moved.request if moved.moved else None


UPDATE = [Notice("parent")]  # what a state change tells the thread: its first message, refreshed


async def in_progress(store: Store, email: str = EMAIL, *, task_id: str = "task-1") -> Request:
    """A request whose thread is posted and whose task Amazon has accepted."""
    request = await new_request(store, email)
    await store.outbox.thread_opened(request.id, "1700000000.000100")
    return await store.requests.record_task_started(request.id, task_id, notices=UPDATE)


def database_bytes(folder: Path) -> dict[str, bytes]:
    """Every SQLite file in ``folder`` (the database, its -wal and -shm), by name."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if ".db" in p.name and not p.name.endswith(".key")}


async def scalar(store: Store, sql: str) -> object:
    rows = await store._db.execute(sql)
    assert rows
    return rows[0][0]


async def in_transaction(store: Store) -> bool:
    """Whether the store's connection has a transaction open (read on its thread)."""
    return await store._db.call(lambda db: db.in_transaction)


# ----------------------------------------------------------------- emails at rest


async def test_database_files_never_hold_an_email_in_plain_text(sqlite_store: Store, tmp_path: Path) -> None:
    """After requests are stored and moved on, no form of any email is in the db, -wal or -shm bytes."""
    emails = [EMAIL, "mo.customer@example.org", "ZOE+tag@shop.example.net"]
    for number, email in enumerate(emails):
        await in_progress(sqlite_store, email, task_id=f"task-{number}")
    files = database_bytes(tmp_path)
    assert {"requests.db", "requests.db-wal"} <= set(files)
    for name, content in files.items():
        for email in emails:
            for form in (email, email.lower(), email.split("@")[0], email.split("@")[0].lower()):
                assert form.encode() not in content, f"{form} in {name}"
                assert form.encode("utf-16-le") not in content, f"{form} (UTF-16) in {name}"


async def test_a_full_flow_leaves_no_email_or_link_in_the_database(tmp_path: Path) -> None:
    """Command, completion and Download end to end: the shopper's email and the link never reach the files."""
    async with running_bot(tmp_path) as bot:
        task_id, parent = await bot.request("jane.shopper@example.com")
        bot.prime.complete(task_id)
        await bot.relay(envelope("PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED", task_id))
        await bot.click(await bot.download_reply(parent), user="U0BOB")
        await bot.slack.wait_for(lambda: [m for m in bot.slack.ephemerals_to("U0BOB") if "X-Amz" in text_of(m)])
        while_running = database_bytes(tmp_path)
    for content in [*while_running.values(), *database_bytes(tmp_path).values()]:
        assert b"jane.shopper" not in content
        assert b"X-Amz-Signature" not in content


async def test_requests_are_found_by_any_case_or_whitespace_variant(store: Store) -> None:
    """Staff may type the address differently each time; the keyed hash finds the same requests."""
    first = await new_request(store)
    await new_request(store, "someone.else@example.com")
    second = await new_request(store, "  jane.shopper@EXAMPLE.COM\t")
    for variant in (EMAIL, EMAIL.upper(), f"  {EMAIL.lower()}  ", "\tJANE.shopper@example.com\n"):
        assert [r.id for r in await store.requests.for_email(variant)] == [second.id, first.id]
    assert await store.requests.for_email("jane.shopper@example.co") == []


async def test_reveal_email_returns_the_email_as_typed(store: Store) -> None:
    """Amazon gets the address with the case the requester typed, not a normalised copy."""
    request = await new_request(store)
    assert await store.requests.reveal_email(request.id) == EMAIL
    assert request.email_masked == "J***@Example.com"


async def test_a_different_key_can_neither_read_nor_find_the_emails(tmp_path: Path, key: bytes) -> None:
    """With another key the sealed email does not open (EmailUnreadable, naming the request) and the lookup
    hash matches nothing."""
    path = tmp_path / "requests.db"
    store = await Store.open(path, cipher=EmailCipher(key))
    request = await new_request(store)
    await store.close()
    other = await Store.open(path, cipher=EmailCipher(os.urandom(32)))
    try:
        with pytest.raises(EmailUnreadable, match=f"request {request.id}: .* cannot be decrypted"):
            await other.requests.reveal_email(request.id)
        assert await other.requests.for_email(EMAIL) == []
    finally:
        await other.close()


def test_equal_emails_seal_differently_but_hash_alike(key: bytes) -> None:
    """A fresh nonce per seal: two requests for one shopper cannot be linked by their ciphertext."""
    cipher = EmailCipher(key)
    assert cipher.encrypt(EMAIL) != cipher.encrypt(EMAIL)
    assert cipher.lookup_hash(EMAIL) == cipher.lookup_hash(f" {EMAIL.lower()} ")
    sealed = bytearray(cipher.encrypt(EMAIL))
    sealed[-1] ^= 1
    with pytest.raises(ValueError):
        cipher.decrypt(bytes(sealed))


# ----------------------------------------------------------------- audit log and schema


async def test_audit_rows_refuse_update_and_delete(store: Store) -> None:
    """Even with raw SQL on the bot's own connection, the audit log can only grow."""
    await new_request(store)
    await store.audit.append(request_id=None, actor="U0BOB", action="link shown", detail="request 1")
    before = await store.audit.entries()
    for sql in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit", "DELETE FROM audit WHERE id = 1"):
        with pytest.raises((sqlite3.IntegrityError, sqlite3.OperationalError), match="append-only"):
            await store._db.execute(sql)
    assert await store.audit.entries() == before
    assert [e.action for e in before] == ["requested", "link shown"]


async def test_migrate_is_idempotent_and_sets_user_version(tmp_path: Path, key: bytes) -> None:
    """Opening twice, or migrating again, changes nothing and leaves user_version at the newest schema."""
    path = tmp_path / "requests.db"
    store = await Store.open(path, cipher=EmailCipher(key))
    request = await new_request(store)
    assert await scalar(store, "PRAGMA user_version") == VERSION
    assert await store._db.call(migrate) == VERSION
    await store.close()
    store = await Store.open(path, cipher=EmailCipher(key))
    try:
        assert await scalar(store, "PRAGMA user_version") == VERSION
        assert await store.requests.reveal_email(request.id) == EMAIL
        assert len(await store.audit.entries()) == 1
    finally:
        await store.close()


async def test_a_database_from_a_newer_bot_is_refused_and_left_alone(tmp_path: Path, key: bytes) -> None:
    """An older bot does not run on a schema it does not know, and does not touch the file."""
    path = tmp_path / "requests.db"
    newer = VERSION + 1
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {newer}")
    with pytest.raises((RuntimeError, DataRequestError), match="newer than this bot"):
        await Store.open(path, cipher=EmailCipher(key))
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == newer
        assert db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0


# ----------------------------------------------------------------- state changes and the outbox


async def test_apply_task_state_completes_once(store: Store) -> None:
    """COMPLETED applied twice moves the request and queues its posts once; a later FAILED moves it on, once."""
    request = await in_progress(store)
    reply = [Notice("reply", {"name": "completed"}), *UPDATE]

    done = await amazon_says(store, request.id, RequestStatus.COMPLETED, [], notices=reply)
    assert done is not None and done.status is RequestStatus.COMPLETED
    queued = await scalar(store, "SELECT COUNT(*) FROM outbox")
    again = await amazon_says(store, request.id, RequestStatus.COMPLETED, [], notices=reply)
    assert again is None
    assert await scalar(store, "SELECT COUNT(*) FROM outbox") == queued == 3
    assert [e.action for e in await store.audit.entries(request_id=request.id)].count("completed") == 1
    # Amazon can fail a completed task later: that moves it once; nothing leaves FAILED.
    failed = await amazon_says(store, request.id, RequestStatus.FAILED, [TaskError("X", "late")], notices=reply)
    assert failed is not None and failed.status is RequestStatus.FAILED
    assert await amazon_says(store, request.id, RequestStatus.FAILED, [], notices=reply) is None
    assert await amazon_says(store, request.id, RequestStatus.COMPLETED, [], notices=reply) is None
    assert await scalar(store, "SELECT COUNT(*) FROM outbox") == queued + 2  # the posts of two moves, no more


async def test_a_move_that_lost_its_race_says_where_the_request_went(store: Store) -> None:
    """A move from a status the request has left moves nothing and says where it stands instead, read in the
    same unit of work, so a handler answers from it without reading the request again."""
    request = await in_progress(store)
    await amazon_says(store, request.id, RequestStatus.COMPLETED, [], notices=UPDATE)
    late = await store.requests.record_task_state(
        request.id, from_={RequestStatus.IN_PROGRESS}, to=RequestStatus.FAILED, errors=(), action="failed", notices=[]
    )
    assert not late.moved
    assert late.request is not None and late.request.status is RequestStatus.COMPLETED


async def test_apply_task_state_ignores_unfinished_states_and_unstarted_requests(store: Store) -> None:
    """IN_PROGRESS changes nothing, and a request Amazon has not confirmed cannot jump to COMPLETED."""
    started = await in_progress(store)
    assert await amazon_says(store, started.id, RequestStatus.IN_PROGRESS, [], notices=UPDATE) is None
    unstarted = await new_request(store, "other@example.com")
    assert await amazon_says(store, unstarted.id, RequestStatus.COMPLETED, [], notices=UPDATE) is None
    assert (await store.requests.get(unstarted.id)).status is RequestStatus.NEW  # type: ignore[union-attr]


async def test_due_outbox_returns_only_the_head_entry_per_request_when_due(store: Store, clock: SettableClock) -> None:
    """Posts for one request go in order: only its oldest unsent entry is offered, and only once it is due."""
    first = await in_progress(store, "a@example.com", task_id="task-a")
    second = await in_progress(store, "b@example.com", task_id="task-b")

    two_posts = [Notice("reply", {"n": "1"}), Notice("reply", {"n": "2"})]
    await amazon_says(store, first.id, RequestStatus.COMPLETED, [], notices=two_posts)
    due = await store.outbox.due()
    assert [e.request_id for e in due] == [first.id, second.id]
    head_a, head_b = due
    await store.outbox.sent(head_b.id)

    await store.outbox.retry(head_a.id, at=clock.now + 30, error="ratelimited")
    assert await store.outbox.due() == []  # a's head waits, and nothing of a may overtake it

    clock.now += 30
    assert [e.id for e in await store.outbox.due()] == [head_a.id]
    await store.outbox.sent(head_a.id)
    following = await store.outbox.due()
    assert [(e.request_id, e.payload) for e in following] == [(first.id, {"n": "1"})]
    for entry in following:
        await store.outbox.sent(entry.id)
    assert [e.payload for e in await store.outbox.due()] == [{"n": "2"}]


async def test_next_outbox_due_is_when_a_waiting_head_is_due(store: Store, clock: SettableClock) -> None:
    """While a request's first post waits out a Retry-After, the outbox's next wake-up is that time, not now."""
    request = await in_progress(store)
    await amazon_says(store, request.id, RequestStatus.COMPLETED, [], notices=UPDATE)
    (head,) = await store.outbox.due()
    await store.outbox.retry(head.id, at=clock.now + 30, error="ratelimited")
    assert await store.outbox.due() == []
    assert await store.outbox.next_due() == clock.now + 30


# ----------------------------------------------------------------- the key file


def test_a_created_key_file_is_private_and_reads_back_unchanged(tmp_path: Path) -> None:
    """No ENCRYPTION_KEY: a 32-byte key is written with mode 0600 and read back unchanged next time."""
    path = tmp_path / "requests.db.key"
    assert read_key_file(path) is None
    key = create_key_file(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path) == key
    assert create_key_file(path) == key, "a second creator keeps the first one's key"
    assert base64.urlsafe_b64decode(path.read_bytes().strip()) == key


@pytest.mark.parametrize("content", [b"", b"not base64 at all!!", base64.urlsafe_b64encode(os.urandom(16))])
def test_a_damaged_key_file_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    """A truncated or overwritten key file is never replaced silently: the operator is told to restore it."""
    path = tmp_path / "requests.db.key"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="damaged"):
        read_key_file(path)
    assert path.read_bytes() == content


# ----------------------------------------------------------------- cancellation


async def test_a_change_that_fails_half_way_is_rolled_back_whole(store: Store) -> None:
    """An error inside a change (here: queueing its Slack posts) leaves no half-change and no open transaction."""
    request = await new_request(store)
    await store.outbox.thread_opened(request.id, "1700000000.000100")
    broken = [Notice("parent", {"not": object()})]  # type: ignore[dict-item]  # no JSON for it: fails mid-change

    with pytest.raises(TypeError):
        await store.requests.record_task_started(request.id, "task-1", notices=broken)
    assert not await in_transaction(store)
    assert (await store.requests.get(request.id)).status is RequestStatus.STARTING  # type: ignore[union-attr]
    assert await scalar(store, "SELECT COUNT(*) FROM outbox") == 0
    assert "task started" not in [e.action for e in await store.audit.entries()]

    started = await store.requests.record_task_started(request.id, "task-1", notices=UPDATE)
    assert started.status is RequestStatus.IN_PROGRESS
    assert not await in_transaction(store)


async def test_a_write_cancelled_while_waiting_to_begin_does_not_break_the_next_one(
    store: Store, tmp_path: Path
) -> None:
    """Cancelled while BEGIN waits for another process's lock, a write must not make the next write fail."""
    with closing(sqlite3.connect(tmp_path / "requests.db", isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # a backup or a second process holds the write lock
        waiting = asyncio.create_task(new_request(store, "a@example.com"))
        await asyncio.sleep(0)  # let it queue BEGIN IMMEDIATE, which now waits for the lock
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        next_write = asyncio.create_task(new_request(store, "b@example.com"))
        await asyncio.sleep(0)
        other.execute("COMMIT")
        stored = await next_write
    assert stored.email_masked == "b***@example.com"
    assert not await in_transaction(store)
    # The cancelled write ran whole or not at all (store writes run as one unit on the connection's thread).
    assert len(await store.requests.for_email("a@example.com")) in (0, 1)
    assert [e.action for e in await store.audit.entries()].count("requested") == 1 + len(
        await store.requests.for_email("a@example.com")
    )


async def test_units_that_arrive_together_commit_together_and_fail_alone(store: Store) -> None:
    """Group commit: thirty inserts at once all land; a unit that fails in the group undoes only itself."""

    def failing(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO audit (at, request_id, actor, action) VALUES (0, NULL, 'x', 'half')")
        raise RuntimeError("this unit fails")

    creations = [new_request(store, f"shopper{i}@example.com") for i in range(30)]
    results = await asyncio.gather(*creations, store._database.run_grouped(failing), return_exceptions=True)
    assert isinstance(results[-1], RuntimeError)
    assert len({r.id for r in results[:-1] if isinstance(r, Request)}) == 30
    actions = [e.action for e in await store.audit.entries()]
    assert actions.count("requested") == 30 and "half" not in actions


async def test_a_burst_of_new_requests_decides_each_as_if_alone(store: Store) -> None:
    """Requests that arrive together are stored together (a statement a step for the burst), yet each decides as
    it would alone: the same shopper asked twice in one burst gets one request, the second told it is a
    duplicate; another kind for that shopper is no duplicate; every stored one has its audit entry, in an
    unbroken chain, and its thread's first post queued."""

    async def ask(email: str, kind: str = RequestKind.RETRIEVAL) -> tuple[Request, bool]:
        return await create(
            store, email, kind=kind, duplicate_window=DAY, notices=[Notice("opener", purpose=OPENS_THREAD)]
        )

    before = await new_request(store, "earlier@example.com")
    asked = [f"shopper{i}@example.com" for i in range(20)] + ["twice@example.com", "Twice@Example.com"]
    asked.append("earlier@example.com")
    outcomes = await asyncio.gather(*(ask(email) for email in asked), ask("twice@example.com", RequestKind.ERASURE))
    created = [request for request, new in outcomes if new]
    assert len(created) == 22 and len({r.id for r in created}) == 22
    (twice, first_new), (again, second_new) = outcomes[20], outcomes[21]
    assert first_new and not second_new and again.id == twice.id
    assert outcomes[22] == (before, False)
    assert outcomes[23][1] and outcomes[23][0].kind == RequestKind.ERASURE
    for request in created:
        assert [e.method for e in await store.outbox.due(request_id=request.id)] == ["opener"]
    requested = [e for e in await store.audit.entries() if e.action == "requested"]
    assert sorted(e.request_id for e in requested) == sorted([before.id] + [r.id for r in created])
    report = await store.audit.verify()
    assert report.broken is None and report.entries == len(await store.audit.entries())


async def test_events_relayed_together_are_each_stored_once(store: Store) -> None:
    """Relayed events that arrive together are stored in one statement, yet each is told whether it was new:
    an event stored before, or sent twice in the same burst, is stored once and the repeat is told so."""
    await store.inbox.add(event_id="before", event_type="COMPLETED", task_id="task-1")
    asked = ["e1", "before", "e2", "e1", "e3"]
    stored = await asyncio.gather(
        *(store.inbox.add(event_id=event_id, event_type="COMPLETED", task_id="task-1") for event_id in asked)
    )
    assert stored == [True, False, True, False, True]
    rows = await store._db.execute("SELECT event_id FROM inbox ORDER BY event_id")
    assert [row["event_id"] for row in rows] == ["before", "e1", "e2", "e3"]


async def test_a_batched_unit_that_fails_fails_alone(store: Store) -> None:
    """Units run together as a batch: when the batch fails, each is tried again alone, so the one that breaks a
    rule fails by itself and the others are kept, as if they had never been batched."""
    ran: list[list[str]] = []

    def together(db: sqlite3.Connection, event_ids: list[str]) -> list[int]:
        ran.append(list(event_ids))
        return [
            db.execute(
                "INSERT INTO inbox (event_id, event_type, task_id, received_at) VALUES (?, 'COMPLETED', 't', 0)",
                (event_id,),
            ).rowcount
            for event_id in event_ids
        ]

    await store._database.run_batched(together, "kept")
    ran.clear()
    results = await asyncio.gather(
        *(store._database.run_batched(together, event_id) for event_id in ("first", "kept", "second")),
        return_exceptions=True,
    )
    assert results[0] == 1 and results[2] == 1 and isinstance(results[1], sqlite3.IntegrityError)
    assert ran == [["first", "kept", "second"], ["first"], ["kept"], ["second"]]
    rows = await store._db.execute("SELECT event_id FROM inbox ORDER BY event_id")
    assert [row["event_id"] for row in rows] == ["first", "kept", "second"]


async def test_a_commit_tells_its_listeners_what_it_queued_and_moved(store: Store) -> None:
    """Each committed unit that queues Slack posts or changes a listed case is signalled once it commits, with
    which it did; bookkeeping (a request's next check) and a unit that rolls back signal nothing."""
    heard: list[Commit] = []
    store.after_commit(heard.append)
    request = await new_request(store)
    assert heard == [Commit(outbox=False, cases=True)]
    await store.requests.schedule_check(request.id, at=1_700_000_100.0)
    assert heard == [Commit(outbox=False, cases=True)]
    await store.outbox.queue_notice(request.id, Notice("parent"))
    assert heard[1:] == [Commit(outbox=True, cases=False)]
    started = await store.requests.record_task_started(
        request.id, "task-1", to=RequestStatus.IN_PROGRESS, notices=[Notice("parent")]
    )
    assert started.status is RequestStatus.IN_PROGRESS
    assert heard[2:] == [Commit(outbox=True, cases=True)]
    with pytest.raises(LookupError):  # not STARTING any more: nothing moves, nothing is said
        await store.requests.record_task_started(request.id, "task-2", to=RequestStatus.IN_PROGRESS, notices=[])
    assert len(heard) == 3


async def test_the_thread_opened_marks_its_post_sent_and_moves_the_request_once(store: Store) -> None:
    """The outbox's record of a sent first message is the one way a request gets its thread: the post is marked
    sent and the request leaves NEW in one unit; a second record (a post found again) moves nothing."""
    request, _ = await create(store, notices=[Notice("opener", purpose=OPENS_THREAD)])
    (entry,) = await store.outbox.due(request_id=request.id)
    opened = await store.outbox.thread_opened(request.id, "1700000000.000100", sent=entry.id)
    assert opened.moved and opened.request is not None
    assert (opened.request.status, opened.request.thread_ts) == (RequestStatus.STARTING, "1700000000.000100")
    assert await store.outbox.due(request_id=request.id) == []
    again = await store.outbox.thread_opened(request.id, "1700000000.000200", sent=entry.id)
    assert not again.moved and again.request == opened.request


async def test_the_next_due_event_says_whether_it_waits_out_a_backoff_or_another_copys_claim(
    store: Store, clock: SettableClock
) -> None:
    """The inbox worker sleeps through a backoff but listens for new events while another copy holds the only
    pending ones: next_due tells the two apart."""
    await in_progress(store, task_id="task-1")
    await store.inbox.add(event_id="event-1", event_type="COMPLETED", task_id="task-1")
    assert await store.inbox.next_due() == (0.0, False)
    assert [e.event_id for e in await store.inbox.pending(limit=10, lease=30.0)] == ["event-1"]
    assert await store.inbox.next_due() == (clock.now + 30.0, True)
    await store.inbox.retry("task-1", at=clock.now + 5.0)
    assert await store.inbox.next_due() == (clock.now + 5.0, False)


async def test_a_unit_the_database_refuses_in_a_group_fails_alone_and_the_next_units_go_on(store: Store) -> None:
    """A constraint broken by one unit of a group commit undoes that unit alone (a savepoint each, on PostgreSQL
    as on SQLite), and every connection goes on serving."""

    def insert(event_id: str) -> Callable[[sqlite3.Connection], None]:
        def unit(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO inbox (event_id, event_type, task_id, received_at) VALUES (?, 'COMPLETED', 't', 0)",
                (event_id,),
            )

        return unit

    await store._database.run(insert("kept"))
    results = await asyncio.gather(
        store._database.run_grouped(insert("first")),
        store._database.run_grouped(insert("kept")),  # the same id again: the primary key refuses it
        store._database.run_grouped(insert("second")),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None and isinstance(results[1], sqlite3.IntegrityError)
    with pytest.raises(sqlite3.IntegrityError):
        await store._database.run(insert("kept"))
    for _ in range(8):  # every pooled connection is usable again
        await new_request(store, f"after{_}@example.com")
    rows = await store._db.execute("SELECT event_id FROM inbox ORDER BY event_id")
    assert [row["event_id"] for row in rows] == ["first", "kept", "second"]
