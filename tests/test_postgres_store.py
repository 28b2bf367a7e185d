"""What PostgreSQL adds to the store's suite (which runs on both backends, tests/test_store.py): the same schema
as SQLite's, the same rules enforced by the database, and what several copies of the bot sharing one database
rely on: claims that give each row to one copy, and one leader at a time that another replaces."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from harness import SettableClock
from test_store import amazon_says, in_progress, new_request

from core import ConfigError
from store import Commit, EmailCipher, Leadership, Notice, RequestStatus, Store, open_verified
from store._schema import VERSION

EMAILS = ["shopper@example.com", "Mo.Customer@Example.org", "zoe+tag@shop.example.net"]


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(1_700_000_000.0)


@pytest.fixture
async def pg(postgres_url: str, clock: SettableClock) -> AsyncIterator[Store]:
    store = await Store.open(postgres_url, cipher=EmailCipher(os.urandom(32)), clock=clock)
    try:
        yield store
    finally:
        await store.close()


async def made(store: Store, email: str, *, task_id: str | None = None) -> int:
    """A request, with its thread and its task at Amazon when ``task_id`` is given (tests/test_store.py's)."""
    request = await (in_progress(store, email, task_id=task_id) if task_id else new_request(store, email))
    return request.id


def sqlite_schema(path: Path) -> tuple[dict[str, list[str]], set[str], int]:
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns = {t: sorted(r[1] for r in db.execute(f"PRAGMA table_info({t})")) for t in tables}
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
        version = db.execute("PRAGMA user_version").fetchone()[0]
    return columns, indexes, version


def postgres_schema(url: str) -> tuple[dict[str, list[str]], set[str], int]:
    with psycopg.connect(url) as db:
        tables = [
            r[0]
            for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            if r[0] != "schema_version"
        ]
        columns = {
            t: sorted(
                r[0]
                for r in db.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s", (t,))
            )
            for t in tables
        }
        indexes = {
            r[0]
            for r in db.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
            if not r[0].endswith(("_pkey", "_key"))
        }
        (version,) = db.execute("SELECT version FROM schema_version").fetchone() or (0,)
    return columns, indexes, version


async def test_both_backends_have_the_same_tables_columns_indexes_and_version(
    postgres_url: str, tmp_path: Path
) -> None:
    """A migration written for one backend and not the other shows here."""
    for where in (tmp_path / "requests.db", postgres_url):
        await (await Store.open(where, cipher=EmailCipher(os.urandom(32)))).close()
    columns, indexes, version = sqlite_schema(tmp_path / "requests.db")
    assert postgres_schema(postgres_url) == (columns, indexes, version)
    assert version == VERSION


async def test_postgresql_never_holds_an_email_in_plain_text(pg: Store, postgres_url: str) -> None:
    """Every row of every table, read as text: no form of any shopper's email, though each is found by it."""
    for number, email in enumerate(EMAILS):
        await made(pg, email, task_id=f"task-{number}")
    with psycopg.connect(postgres_url) as db:
        tables = [r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        text = "\n".join(str(r[0]) for t in tables for r in db.execute(f"SELECT t::text FROM {t} t"))
    for email in EMAILS:
        for form in (email, email.lower(), email.split("@")[0].lower()):
            assert form not in text.lower()
        assert len(await pg.requests.for_email(email.upper())) == 1


async def test_the_audit_log_refuses_update_delete_and_truncate_whoever_asks(pg: Store, postgres_url: str) -> None:
    await made(pg, EMAILS[0])
    for statement in ("UPDATE audit SET detail = 'x'", "DELETE FROM audit", "TRUNCATE audit CASCADE"):
        with psycopg.connect(postgres_url) as db, pytest.raises(psycopg.Error, match="append-only"):
            db.execute(statement)
    assert [entry.action for entry in await pg.audit.entries()] == ["requested"]


async def test_a_wrong_or_missing_key_is_refused_and_the_password_never_shown(
    postgres_url: str, clock: SettableClock
) -> None:
    key = os.urandom(32)
    store = await open_verified(postgres_url, configured=key, create_key=True, clock=clock)
    await made(store, EMAILS[0])
    await store.close()
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY does not open"):
        await open_verified(postgres_url, configured=os.urandom(32), create_key=True)
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY is not"):
        await open_verified(postgres_url, configured=None, create_key=True)
    reopened = await open_verified(postgres_url, configured=key, create_key=True)
    assert (await reopened.requests.for_email(EMAILS[0]))[0].email_masked
    await reopened.close()
    unreachable = "postgresql://bot:s3cret-pass@127.0.0.1:1/requests"
    with pytest.raises(ConfigError) as refused:
        await open_verified(unreachable, configured=key, create_key=True)
    assert "DATABASE_URL" in str(refused.value) and "s3cret-pass" not in str(refused.value)


async def test_two_copies_claim_each_outbox_entry_and_each_event_once(postgres_url: str, clock: SettableClock) -> None:
    """Two stores on one database (two copies of the bot): asked together, each due post is claimed by one,
    and the pending events are shared out with none given to both."""
    key = os.urandom(32)
    one = await Store.open(postgres_url, cipher=EmailCipher(key), clock=clock)
    two = await Store.open(postgres_url, cipher=EmailCipher(key), clock=clock)
    try:
        ids = [await made(one, f"shopper{n}@example.com", task_id=f"task-{n}") for n in range(40)]
        for request_id in ids:
            await one.outbox.queue_notice(request_id, Notice("parent"))
        clock.now += 60
        entries = await one.outbox.due(limit=100)
        assert len(entries) == 40
        claims = await asyncio.gather(*(store.outbox.attempting(entry.id) for entry in entries for store in (one, two)))
        assert [a + b for a, b in zip(claims[::2], claims[1::2], strict=True)] == [1] * 40
        assert await two.outbox.due(limit=100) == []  # claimed: neither copy's worker takes them again
        clock.now += 61  # a claim outlives a dead copy by its lease, no longer
        assert len(await two.outbox.due(limit=100)) == 40

        for n in range(40):
            await one.inbox.add(event_id=f"event-{n}", event_type="COMPLETED", task_id=f"task-{n}")
        first, second = await asyncio.gather(one.inbox.pending(limit=25), two.inbox.pending(limit=25))
        got = [e.event_id for e in first] + [e.event_id for e in second]
        assert len(got) == len(set(got)) == 40
        assert await one.inbox.pending(limit=100) == []
    finally:
        await one.close()
        await two.close()


async def test_one_copy_leads_and_another_takes_over_when_it_stops(postgres_url: str) -> None:
    """The singleton work runs in one copy at a time; when the leader's session ends, another copy leads."""
    running: list[str] = []
    started = {name: asyncio.Event() for name in ("a", "b")}

    def work(name: str) -> object:
        async def lead() -> None:
            running.append(name)
            started[name].set()
            try:
                await asyncio.Event().wait()
            finally:
                running.remove(name)

        return lead

    leaders = {name: Leadership(postgres_url, ask_every=0.05) for name in ("a", "b")}
    tasks = {name: asyncio.create_task(leaders[name].run(work(name))) for name in ("a", "b")}  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(10):
            await asyncio.wait(
                [asyncio.create_task(e.wait()) for e in started.values()], return_when=asyncio.FIRST_COMPLETED
            )
        first = running[0]
        other = "b" if first == "a" else "a"
        for _ in range(10):  # the follower keeps asking and keeps being told no
            await asyncio.sleep(0.05)
            assert running == [first] and not leaders[other].leading
        tasks[first].cancel()
        async with asyncio.timeout(10):
            await started[other].wait()
        assert running == [other] and leaders[other].leading
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


async def test_a_commit_of_another_copy_is_heard_so_its_posts_are_not_left_waiting(
    postgres_url: str, clock: SettableClock
) -> None:
    """Copy one hears that copy two queued a post (and moved a case): were two to die before sending it, one
    sends it at once rather than at its next round."""
    key = os.urandom(32)
    one = await Store.open(postgres_url, cipher=EmailCipher(key), clock=clock)
    two = await Store.open(postgres_url, cipher=EmailCipher(key), clock=clock)
    heard: list[Commit] = []
    got = asyncio.Event()

    def hear(commit: Commit) -> None:
        heard.append(commit)
        got.set()

    try:
        request_id = await made(two, EMAILS[0])
        one.after_commit(hear)
        await two.outbox.queue_notice(request_id, Notice("parent"))
        async with asyncio.timeout(10):
            while Commit(outbox=True, cases=False) not in heard:
                await got.wait()
                got.clear()
        before = len(heard)
        await one.outbox.queue_notice(request_id, Notice("parent"))  # its own commit: heard once, at COMMIT
        assert heard[before:] == [Commit(outbox=True, cases=False)]
    finally:
        await one.close()
        await two.close()


async def test_a_request_is_moved_by_one_copy_at_a_time(postgres_url: str, clock: SettableClock) -> None:
    """While one copy holds a request (asking Amazon between reading and writing it), another copy's hold of the
    same request waits, and one of another request does not; a copy that dies frees what it held."""
    key = os.urandom(32)
    one = await Store.open(postgres_url, cipher=EmailCipher(key), clock=clock)
    two = await Store.open(postgres_url, cipher=EmailCipher(key), clock=clock)
    order: list[str] = []
    try:
        async with one.across.hold(1):
            waiting = asyncio.create_task(_hold(two, 1, order, "two moved 1"))
            async with two.across.hold(2):
                order.append("two moved 2")
            for _ in range(20):
                await asyncio.sleep(0.01)
                assert not waiting.done()
            order.append("one moved 1")
        await asyncio.wait_for(waiting, 10)
        assert order == ["two moved 2", "one moved 1", "two moved 1"]
        async with one.across.hold(3):
            await one.across.close()  # the copy's session ends, as when it dies
        await asyncio.wait_for(_hold(two, 3, order, "two moved 3"), 10)
    finally:
        await one.close()
        await two.close()


async def _hold(store: Store, request_id: int, order: list[str], said: str) -> None:
    async with store.across.hold(request_id):
        order.append(said)


async def test_retention_erases_the_email_and_vacuums_it_out_of_the_table(pg: Store, postgres_url: str) -> None:
    """The erased sealed email leaves the live row at once and, with the VACUUM that follows, every dead version
    of the row too, rather than waiting for some later autovacuum. (Bytes left in a page's free space or the
    server's WAL are sealed, and opened by no key once the old one is destroyed after a rotation.)"""
    request_id = await made(pg, EMAILS[0], task_id="task-0")
    assert await amazon_says(pg, request_id, RequestStatus.COMPLETED, notices=[])
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        (sealed,) = db.execute("SELECT email_sealed FROM requests WHERE id = %s", (request_id,)).fetchone() or (None,)
        assert sealed and bytes(sealed) in row_versions(db, "requests")
    assert await pg.cases.purge_expired(older_than=2_000_000_000.0, free_text=()) == [request_id]
    with psycopg.connect(postgres_url) as db:
        row = db.execute("SELECT email_sealed, email_hash, purged_at FROM requests").fetchone()
        assert row is not None and row[0] is None and row[1] is None and row[2] is not None
        assert bytes(sealed) not in row_versions(db, "requests")
    assert [e.action for e in await pg.audit.entries()][-1] == "purged"


def row_versions(db: psycopg.Connection[tuple[object, ...]], table: str) -> bytes:
    """Every version of every row ``table`` keeps, live or dead, as stored (pageinspect, a superuser's)."""
    (size,) = db.execute("SELECT pg_relation_size(%s)", (table,)).fetchone() or (0,)
    items = db.execute(
        "SELECT t_data FROM generate_series(0, %s - 1) n, heap_page_items(get_raw_page(%s, n::int))"
        " WHERE t_data IS NOT NULL",
        (int(size) // 8192, table),
    ).fetchall()
    return b"".join(bytes(data) for (data,) in items)
