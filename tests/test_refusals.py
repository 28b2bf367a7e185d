"""Refuse to run wrong: each refusal as an operator meets it, in a real process (exit 2, one line, no traceback).

Closed by default, a key that does not open the data (or none for a database that has data), a second
``serve`` on one database; and the files the bot creates are its owner's alone.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import stat
import sys
from pathlib import Path

import pytest
from fakes import FakeSlack
from processes import Fakes, clean_env, free_port, run_bot, wait_until_healthy

from core import RequestKind
from store import EmailCipher, open_verified

PROG = "data-request-bot:"


def one_line(stderr: str) -> str:
    """The single problem line, checked to carry the program's name and no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{PROG} "), lines
    return lines[0]


def encoded(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


async def seed(database: Path, key: bytes, emails: int = 1, *, pattern: str = "shopper{n}@example.com") -> None:
    """A database with ``emails`` requests sealed under ``key``, as a bot with that key would leave it."""
    store = await open_verified(database, configured=key, create_key=False)
    try:
        for n in range(emails):
            await store.requests.create(
                kind=RequestKind.RETRIEVAL,
                email=pattern.format(n=n),
                email_masked="s***@example.com",
                requester="U0ALICE",
                channel="C0COMPLY",
                due_at=0.0,
                deadline="30 days",
            )
    finally:
        await store.close()


class Serving:
    """A real ``serve`` process; stopped with SIGTERM at the end."""

    def __init__(self, env: dict[str, str], cwd: Path, umask: int | None = None) -> None:
        self.env, self.cwd, self.umask = env, cwd, umask
        self.log = cwd / f"serve-{env['PORT']}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> asyncio.subprocess.Process:
        umask = self.umask
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "serve",
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=out,
                preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
            )
        await wait_until_healthy(self.process, f"http://127.0.0.1:{self.env['PORT']}/healthz", self.log)
        return self.process

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                await self.process.wait()


# ----------------------------------------------------------------- closed by default


async def test_serve_without_an_allow_list_refuses_naming_both_settings_and_the_opt_in(
    fakes: Fakes, tmp_path: Path
) -> None:
    """No ALLOWED_USERS and no ALLOWED_USERGROUP: exit 2, one line naming both and ALLOWED_USERS=*; nothing created."""
    env = fakes.env(tmp_path, PORT=str(free_port()))
    del env["ALLOWED_USERS"]
    done = await run_bot("serve", env=env, cwd=tmp_path)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "ALLOWED_USERS" in line and "ALLOWED_USERGROUP" in line and "ALLOWED_USERS=*" in line
    assert not (tmp_path / "data").exists()


async def test_serve_with_allowed_users_star_starts_and_warns(fakes: Fakes, tmp_path: Path) -> None:
    """ALLOWED_USERS=* is the explicit opt-in: the bot serves, and its log says everyone may download."""
    env = fakes.env(tmp_path, PORT=str(free_port()), ALLOWED_USERS="*")
    async with Serving(env, tmp_path):
        pass
    log = (tmp_path / f"serve-{env['PORT']}.log").read_text()
    assert "every member of the workspace may request shopper data" in log


async def test_serve_sandbox_without_an_allow_list_starts_with_a_warning(tmp_path: Path) -> None:
    """`serve --sandbox` holds no real shopper data: it starts without an allow-list, and warns."""
    async with FakeSlack() as slack:
        port = free_port()
        env = clean_env(
            SLACK_BOT_TOKEN=slack.token,
            SLACK_SIGNING_SECRET="sandbox-signing-secret",
            SLACK_API_URL=slack.api_url,
            DATABASE_PATH=str(tmp_path / "sandbox.db"),
            PORT=str(port),
        )
        log = tmp_path / "sandbox.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "serve", "--sandbox", env=env, cwd=tmp_path, stdout=out, stderr=out
            )
        try:
            await wait_until_healthy(process, f"http://127.0.0.1:{port}/healthz", log)
        finally:
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
    assert "every member of the workspace may request shopper data" in log.read_text()


# ----------------------------------------------------------------- the key check


async def test_serve_with_a_new_encryption_key_on_a_populated_database_refuses(fakes: Fakes, tmp_path: Path) -> None:
    """A freshly made ENCRYPTION_KEY does not open the stored emails: exit 2 and one line naming ENCRYPTION_KEY."""
    env = fakes.env(tmp_path, PORT=str(free_port()), ENCRYPTION_KEY=encoded(os.urandom(32)))
    await seed(Path(env["DATABASE_PATH"]), os.urandom(32))
    done = await run_bot("serve", env=env, cwd=tmp_path)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "ENCRYPTION_KEY" in line and "does not open the data" in line


@pytest.mark.parametrize("key_file", [False, True], ids=["ENCRYPTION_KEY", "key file"])
async def test_a_malformed_key_beside_a_database_with_data_names_the_key_it_needs_not_a_new_one(
    fakes: Fakes, tmp_path: Path, key_file: bool
) -> None:
    """ENCRYPTION_KEY cut short beside a database that holds data: exit 2, one line naming the key the data needs
    (its fingerprint, or the key file to copy), never the advice to make a new key (which could not open it)."""
    env = fakes.env(tmp_path, PORT=str(free_port()))
    database, key = Path(env["DATABASE_PATH"]), os.urandom(32)
    await seed(database, key)
    if key_file:
        Path(f"{database}.key").write_text(encoded(key) + "\n")
    done = await run_bot("serve", env={**env, "ENCRYPTION_KEY": encoded(key)[:-6]}, cwd=tmp_path)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith(f"{PROG} ENCRYPTION_KEY is not 32 bytes") and "new key with" not in line
    if key_file:
        assert f"copy the contents of {database}.key into it" in line
    else:
        assert f"the key {database} holds data under (key {EmailCipher(key).fingerprint})" in line


async def test_a_new_key_beside_the_key_file_is_told_to_copy_the_key_file(fakes: Fakes, tmp_path: Path) -> None:
    """The first start made a key file; setting a new ENCRYPTION_KEY names the file whose contents to copy."""
    env = fakes.env(tmp_path, PORT=str(free_port()))
    async with Serving(env, tmp_path):  # first start: creates the key file and records the key check
        pass
    key_file = Path(env["DATABASE_PATH"] + ".key")
    assert key_file.exists()
    done = await run_bot("serve", env={**env, "ENCRYPTION_KEY": encoded(os.urandom(32))}, cwd=tmp_path)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "ENCRYPTION_KEY" in line and f"copy the contents of {key_file}" in line
    assert "Copy its contents into ENCRYPTION_KEY" in (tmp_path / f"serve-{env['PORT']}.log").read_text()


async def test_a_lost_key_file_on_a_populated_database_refuses_rather_than_making_a_new_key(
    fakes: Fakes, tmp_path: Path
) -> None:
    """ENCRYPTION_KEY unset and the key file gone: exit 2 naming ENCRYPTION_KEY, and no new key file appears."""
    env = fakes.env(tmp_path, PORT=str(free_port()))
    database = Path(env["DATABASE_PATH"])
    await seed(database, os.urandom(32))
    done = await run_bot("serve", env=env, cwd=tmp_path)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "ENCRYPTION_KEY is not set" in line and "holds data" in line
    assert not Path(env["DATABASE_PATH"] + ".key").exists()


async def test_a_database_from_before_the_key_check_is_verified_against_its_emails(tmp_path: Path) -> None:
    """No stored check yet (an older database): the right key is accepted and recorded, a wrong one refused."""
    database, key = tmp_path / "old.db", os.urandom(32)
    await seed(database, key, emails=3)
    import sqlite3

    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM key_check")  # as a database from before the check was introduced
    from core import ConfigError

    with pytest.raises(ConfigError, match="does not open the data"):
        await open_verified(database, configured=os.urandom(32), create_key=False)
    store = await open_verified(database, configured=key, create_key=False)
    await store.close()
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT fingerprint FROM key_check").fetchone()[0] == EmailCipher(key).fingerprint


@pytest.mark.parametrize("command", [["audit"], ["audit", "--reveal"], ["purge"], ["backup", "copy.db"]])
async def test_offline_commands_with_the_wrong_key_refuse_in_one_line(tmp_path: Path, command: list[str]) -> None:
    """audit (with or without --reveal), purge and backup verify the key first: exit 2 and one line, no traceback."""
    database = tmp_path / "requests.db"
    await seed(database, os.urandom(32))
    env = clean_env(DATABASE_PATH=str(database), ENCRYPTION_KEY=encoded(os.urandom(32)))
    done = await run_bot(*command, env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "ENCRYPTION_KEY" in one_line(done.stderr)
    assert done.stdout == ""
    assert not (tmp_path / "copy.db").exists(), "no backup is made with a key that does not open it"


# ----------------------------------------------------------------- one instance per database


async def test_a_second_serve_on_the_same_database_exits_2_naming_it_and_the_holders_pid(
    fakes: Fakes, tmp_path: Path
) -> None:
    """A real first process holds the lock; a second serve (another port) exits 2 with the database and the PID."""
    env = fakes.env(tmp_path, PORT=str(free_port()), ENCRYPTION_KEY=encoded(os.urandom(32)))
    async with Serving(env, tmp_path) as first:
        done = await run_bot("serve", env={**env, "PORT": str(free_port())}, cwd=tmp_path)
        assert done.returncode == 2
        line = one_line(done.stderr)
        assert env["DATABASE_PATH"] in line and f"PID {first.pid}" in line
        assert first.returncode is None, "the first bot keeps running"


async def test_another_name_for_the_database_does_not_get_around_the_lock(fakes: Fakes, tmp_path: Path) -> None:
    """A symbolic link in another folder leads to the running bot's lock (exit 2 with its PID), for serve and
    rotate-key alike; a hard link, a second name SQLite would give a second WAL, is refused by name."""
    env = fakes.env(tmp_path, PORT=str(free_port()), ENCRYPTION_KEY=encoded(os.urandom(32)))
    database = Path(env["DATABASE_PATH"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    async with Serving(env, tmp_path) as first:
        (elsewhere / "symlink.db").symlink_to(database)
        os.link(database, elsewhere / "hardlink.db")
        through_symlink = {**env, "PORT": str(free_port()), "DATABASE_PATH": str(elsewhere / "symlink.db")}
        through_hard_link = {**through_symlink, "DATABASE_PATH": str(elsewhere / "hardlink.db")}
        serve = await run_bot("serve", env=through_symlink, cwd=tmp_path)
        rotate = await run_bot(
            "rotate-key", env={**through_symlink, "NEW_ENCRYPTION_KEY": encoded(os.urandom(32))}, cwd=tmp_path
        )
        hard = await run_bot("serve", env=through_hard_link, cwd=tmp_path)
        assert first.returncode is None, "the first bot keeps running"
    for done in (serve, rotate):
        assert done.returncode == 2, done.stderr
        assert f"PID {first.pid}" in one_line(done.stderr)
    assert hard.returncode == 2, hard.stderr
    line = one_line(hard.stderr)
    assert f"{elsewhere / 'hardlink.db'} is one of 2 names (hard links) for the same file" in line
    assert "-samefile" in line


async def test_offline_commands_keep_working_beside_a_running_bot(fakes: Fakes, tmp_path: Path) -> None:
    """audit, purge, check and backup do not take the lock: each exits 0 while serve runs; rotate-key waits."""
    env = fakes.env(tmp_path, PORT=str(free_port()), ENCRYPTION_KEY=encoded(os.urandom(32)))
    async with Serving(env, tmp_path) as first:
        for command in (["audit"], ["purge"], ["check"], ["backup", str(tmp_path / "copy.db")]):
            done = await run_bot(*command, env=env, cwd=tmp_path)
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        rotated = await run_bot("rotate-key", env={**env, "NEW_ENCRYPTION_KEY": encoded(os.urandom(32))}, cwd=tmp_path)
        assert rotated.returncode == 2
        assert f"PID {first.pid}" in one_line(rotated.stderr)


async def test_the_lock_is_freed_when_the_holder_is_killed(fakes: Fakes, tmp_path: Path) -> None:
    """kill -9 leaves no stale lock: the kernel frees it, and the next serve starts."""
    env = fakes.env(tmp_path, PORT=str(free_port()), ENCRYPTION_KEY=encoded(os.urandom(32)))
    async with Serving(env, tmp_path) as first:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    async with Serving(env, tmp_path) as second:
        assert second.returncode is None


# ----------------------------------------------------------------- private files


async def test_every_file_the_bot_creates_is_its_owners_alone_whatever_the_umask(fakes: Fakes, tmp_path: Path) -> None:
    """Under umask 000: the folder it creates is 0700; database, WAL, SHM, key file and lock file are 0600."""
    env = fakes.env(tmp_path, PORT=str(free_port()))
    database = Path(env["DATABASE_PATH"])
    async with Serving(env, tmp_path, umask=0):
        files = {name: database.with_name(database.name + name) for name in ("", "-wal", "-shm", ".key", ".lock")}
        modes = {name: stat.S_IMODE(path.stat().st_mode) for name, path in files.items()}
        assert modes == dict.fromkeys(files, 0o600)
        assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700


async def test_check_warns_about_a_database_others_can_read(fakes: Fakes, tmp_path: Path) -> None:
    """An existing database with mode 0644: check prints a warning naming it and the chmod that fixes it."""
    database = tmp_path / "data" / "requests.db"
    key = os.urandom(32)
    await seed(database, key)
    database.chmod(0o644)
    env = fakes.env(tmp_path, ENCRYPTION_KEY=encoded(key))
    done = await run_bot("check", env=env, cwd=tmp_path)
    warnings = [line for line in done.lines if line.startswith("! ")]
    assert any(str(database) in line and "chmod 600" in line for line in warnings), done.stdout
    database.chmod(0o600)
    done = await run_bot("check", env=env, cwd=tmp_path)
    assert not [line for line in done.lines if line.startswith("! ") and "chmod" in line], done.stdout


async def test_the_authorizer_is_closed_when_nothing_is_configured() -> None:
    """No list, no group, no explicit everyone: nobody may act (the default was everyone before)."""
    from slack_sdk.web.async_client import AsyncWebClient

    from handlers.workers.access import Authorizer

    slack = AsyncWebClient(token="xoxb-unused", base_url="http://127.0.0.1:9/api/")
    closed = Authorizer(allowed_users=frozenset(), usergroup=None, slack=slack)
    assert not (await closed.check("U0ANYONE")).allowed and not closed.everyone_allowed
    opened = Authorizer(allowed_users=frozenset(), usergroup=None, everyone=True, slack=slack)
    assert (await opened.check("U0ANYONE")).allowed
