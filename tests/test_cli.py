"""The command line as an operator runs it: ``python -m bot serve`` and ``check``, in a real subprocess."""

from __future__ import annotations

import asyncio
import base64
import importlib.metadata
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest
from fakes import FakePrime, FakeSlack
from processes import Fakes, Finished, clean_env, free_port, run_bot, wait_until_healthy

from store._schema import BASELINE_VERSION, VERSION

PROG = "data-request-bot:"
REQUIRED = [
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "BWP_CLIENT_ID",
    "BWP_CLIENT_SECRET",
    "BWP_TARGET_ID",
    "ALLOWED_USERS",
]


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    async with FakeSlack(usergroups={"S0COMPLY": ["U0CAROL"]}) as slack, FakePrime() as prime:
        yield Fakes(slack, prime)
        assert not prime.invalid, prime.invalid


def assert_one_line_per_problem(stderr: str) -> list[str]:
    """Every line is the program's name and a problem; no traceback."""
    lines = stderr.splitlines()
    assert lines, "expected at least one problem"
    assert "Traceback" not in stderr
    assert all(line.startswith(f"{PROG} ") for line in lines), lines
    return lines


# ----------------------------------------------------------------- serve


def test_serve_with_an_empty_environment_names_each_missing_setting(tmp_path: Path) -> None:
    """Nothing configured: exit 2, one line per missing setting, each naming it, and no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = assert_one_line_per_problem(done.stderr)
    assert [line.split()[1] for line in lines] == REQUIRED
    assert done.stdout == ""
    assert not list(tmp_path.iterdir()), "nothing is created before the configuration is valid"


async def test_serve_becomes_healthy_creates_a_private_key_and_stops_on_sigterm(fakes: Fakes, tmp_path: Path) -> None:
    """A real process: /healthz answers 200, the key file appears beside the database (0600), SIGTERM exits 0."""
    port = free_port()
    env = fakes.env(tmp_path, PORT=str(port), LOG_LEVEL="INFO")
    database = tmp_path / "data" / "requests.db"
    stderr_path = tmp_path / "serve.stderr"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", env=env, cwd=tmp_path, stdout=stderr, stderr=stderr
        )
        try:
            await wait_until_healthy(process, f"http://127.0.0.1:{port}/healthz", stderr_path)
            key_file = database.with_name(database.name + ".key")
            assert key_file.exists(), sorted(p.name for p in database.parent.iterdir())
            assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                returncode = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    log = stderr_path.read_text()
    assert returncode == 0, log
    assert "Traceback" not in log
    assert "ENCRYPTION_KEY is not set" in log


async def test_serve_with_a_damaged_key_file_says_so_in_one_line(fakes: Fakes, tmp_path: Path) -> None:
    """A key file that does not hold a key stops the start with exit 2 and a sentence, not a traceback."""
    env = fakes.env(tmp_path, PORT=str(free_port()))
    database = Path(env["DATABASE_PATH"])
    database.parent.mkdir()
    database.with_name(database.name + ".key").write_text("not a key\n")
    done = await run_bot("serve", env=env, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = assert_one_line_per_problem(done.stderr)
    assert "damaged" in line


async def test_serve_on_a_database_from_a_newer_bot_says_so_in_one_line(fakes: Fakes, tmp_path: Path) -> None:
    """A database migrated by a newer version is refused with exit 2 and a sentence, not a traceback."""
    env = fakes.env(tmp_path, PORT=str(free_port()))
    database = Path(env["DATABASE_PATH"])
    database.parent.mkdir()
    with closing(sqlite3.connect(database)) as db:
        db.execute(f"PRAGMA user_version = {VERSION + 1}")
    done = await run_bot("serve", env=env, cwd=tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if "ENCRYPTION_KEY is not set" not in line]
    (line,) = assert_one_line_per_problem("\n".join(lines))
    assert "newer" in line


async def test_serve_on_a_database_from_before_the_first_release_says_so_in_one_line(
    fakes: Fakes, tmp_path: Path
) -> None:
    """A development build's database (below the baseline schema) is refused with exit 2 and a sentence naming
    DATABASE_PATH, and left as it was: no release wrote such a file, so there is no upgrade to run."""
    env = fakes.env(tmp_path, PORT=str(free_port()))
    database = Path(env["DATABASE_PATH"])
    database.parent.mkdir()
    with closing(sqlite3.connect(database)) as db:
        db.execute("CREATE TABLE requests (id INTEGER PRIMARY KEY)")
        db.execute(f"PRAGMA user_version = {BASELINE_VERSION - 1}")
    done = await run_bot("serve", env=env, cwd=tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if "ENCRYPTION_KEY is not set" not in line]
    (line,) = assert_one_line_per_problem("\n".join(lines))
    assert "DATABASE_PATH" in line and f"schema version {BASELINE_VERSION - 1}" in line
    with closing(sqlite3.connect(database)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == BASELINE_VERSION - 1
        assert [row[0] for row in db.execute("SELECT name FROM sqlite_master")] == ["requests"]


async def test_serve_on_a_port_in_use_says_so_in_one_line_naming_port(fakes: Fakes, tmp_path: Path) -> None:
    """A taken port is the environment's to fix: exit 2 and one line naming PORT, not a traceback."""
    with closing(socket.socket()) as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = fakes.env(tmp_path, PORT=str(port), ENCRYPTION_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode())
        done = await run_bot("serve", env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    (line,) = assert_one_line_per_problem(done.stderr)
    assert line.startswith(f"{PROG} PORT: port {port} is in use"), line


# ----------------------------------------------------------------- check


async def test_check_against_working_fakes_prints_ticks_and_exits_0(fakes: Fakes, tmp_path: Path) -> None:
    """Every finding is a ✓ line; Slack's auth.test and a Buy with Prime token and probe were really made."""
    (tmp_path / "data").mkdir()
    done = await run_bot("check", env=fakes.env(tmp_path, ALLOWED_USERGROUP="S0COMPLY"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    findings = [line for line in done.lines if line[:1] in "✓✗"]
    assert findings and all(line.startswith("✓ ") for line in findings), done.stdout
    said = done.stdout
    assert "configuration" in said and "database" in said and "Slack" in said and "Buy with Prime" in said
    assert "S0COMPLY has 1 members" in said
    assert done.lines[-1] == "all good"
    assert fakes.slack.calls_to("auth.test")
    assert fakes.prime.token_requests >= 1 and fakes.prime.queries()
    assert "Traceback" not in done.stderr


def failures(done: Finished) -> list[tuple[str, str]]:
    """Each ✗ line with the fix line under it."""
    found = []
    for number, line in enumerate(done.lines):
        if line.startswith("✗ "):
            following = done.lines[number + 1] if number + 1 < len(done.lines) else ""
            found.append((line, following.strip()))
    return found


async def test_check_with_a_wrong_client_secret_says_what_to_fix(fakes: Fakes, tmp_path: Path) -> None:
    """Buy with Prime refuses the credentials: a ✗ line naming the settings to check, and exit 1."""
    (tmp_path / "data").mkdir()
    done = await run_bot("check", env=fakes.env(tmp_path, BWP_CLIENT_SECRET="wrong-secret"), cwd=tmp_path)
    assert done.returncode == 1
    ((line, fix),) = failures(done)
    assert "Buy with Prime" in line
    assert fix.startswith("fix:") and "BWP_CLIENT_SECRET" in fix
    assert "wrong-secret" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


async def test_check_with_a_wrong_slack_token_says_what_to_fix(fakes: Fakes, tmp_path: Path) -> None:
    """Slack answers invalid_auth: a ✗ line with the error and where the right token is, and exit 1."""
    (tmp_path / "data").mkdir()
    wrong = "xoxb-0000-wrong-token-value"
    done = await run_bot("check", env=fakes.env(tmp_path, SLACK_BOT_TOKEN=wrong), cwd=tmp_path)
    assert done.returncode == 1
    ((line, fix),) = failures(done)
    assert "Slack" in line and "invalid_auth" in line
    assert fix.startswith("fix:") and "SLACK_BOT_TOKEN" in fix
    assert wrong not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


async def test_check_with_an_unknown_usergroup_says_what_to_fix(fakes: Fakes, tmp_path: Path) -> None:
    """A user group id Slack does not know is a ✗ with the fix, and exit 1."""
    (tmp_path / "data").mkdir()
    done = await run_bot("check", env=fakes.env(tmp_path, ALLOWED_USERGROUP="S0NOSUCH"), cwd=tmp_path)
    assert done.returncode == 1
    ((line, fix),) = failures(done)
    assert "S0NOSUCH" in line
    assert fix.startswith("fix:")
    assert fakes.slack.calls_to("usergroups.users.list")


async def test_check_with_bad_settings_lists_each_problem_without_calling_out(fakes: Fakes, tmp_path: Path) -> None:
    """Malformed settings are ✗ lines, one per setting, and nothing is sent to Slack or Amazon."""
    env = fakes.env(tmp_path, PORT="70000", LOG_LEVEL="LOUD")
    done = await run_bot("check", env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert sorted(line.split()[1] for line, _ in failures(done)) == ["LOG_LEVEL", "PORT"]
    assert all(fix.startswith("fix:") for _, fix in failures(done))
    assert not fakes.slack.calls and not fakes.prime.token_requests


async def test_check_sandbox_checks_slack_and_the_database_and_never_calls_amazon(fakes: Fakes, tmp_path: Path) -> None:
    """`check --sandbox` is accepted, needs no BWP_* settings or allow-list, and makes no call to Buy with Prime."""
    env = fakes.env(tmp_path)
    for name in ("BWP_CLIENT_ID", "BWP_CLIENT_SECRET", "BWP_TARGET_ID", "ALLOWED_USERS"):
        del env[name]
    done = await run_bot("check", "--sandbox", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Buy with Prime: skipped (--sandbox" in done.stdout
    assert "database" in done.stdout and fakes.slack.calls_to("auth.test")
    assert not fakes.prime.token_requests and not fakes.prime.queries()
    assert any(line.startswith("! every workspace member") for line in done.lines)


async def test_check_without_an_allow_list_fails_naming_the_opt_in(fakes: Fakes, tmp_path: Path) -> None:
    """What serve would refuse, check reports: a ✗ for the missing allow-list, whose fix names ALLOWED_USERS=*."""
    env = fakes.env(tmp_path)
    del env["ALLOWED_USERS"]
    done = await run_bot("check", env=env, cwd=tmp_path)
    assert done.returncode == 1
    ((line, fix),) = failures(done)
    assert "ALLOWED_USERGROUP" in line and "ALLOWED_USERS=*" in fix


async def test_check_blames_the_network_not_the_token_when_dns_fails(fakes: Fakes, tmp_path: Path) -> None:
    """A host that does not resolve: the ✗ says DNS, the fix names HTTPS_PROXY, and SLACK_BOT_TOKEN is not blamed."""
    (tmp_path / "data").mkdir()
    env = fakes.env(tmp_path, SLACK_API_URL="https://slack.nonexistent.invalid/api/", ALLOWED_USERS="*")
    done = await run_bot("check", "--sandbox", env=env, cwd=tmp_path)
    assert done.returncode == 1
    ((line, fix),) = failures(done)
    assert "DNS" in line and "slack.nonexistent.invalid" in line
    assert "HTTPS_PROXY" in fix and "SLACK_BOT_TOKEN" not in fix


async def test_check_says_a_404_is_the_url_not_the_token(fakes: Fakes, tmp_path: Path) -> None:
    """SLACK_API_URL pointing at something that answers 404: the fix is about SLACK_API_URL, not the token."""
    (tmp_path / "data").mkdir()
    wrong = fakes.slack.api_url.replace("/api/", "/not-the-api/")
    done = await run_bot("check", "--sandbox", env=fakes.env(tmp_path, SLACK_API_URL=wrong), cwd=tmp_path)
    assert done.returncode == 1
    ((line, fix),) = failures(done)
    assert "404" in line and "SLACK_API_URL" in fix and "SLACK_BOT_TOKEN" not in fix


async def test_check_finds_an_encryption_key_that_does_not_open_the_database(fakes: Fakes, tmp_path: Path) -> None:
    """A new ENCRYPTION_KEY beside a key file the database was made with: ✗, and the fix names the file to copy."""
    from store import open_verified

    database = tmp_path / "data" / "requests.db"
    store = await open_verified(database, configured=None, create_key=True)
    await store.close()
    env = fakes.env(tmp_path, ENCRYPTION_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode())
    done = await run_bot("check", "--sandbox", env=env, cwd=tmp_path)
    assert done.returncode == 1
    ((line, fix),) = failures(done)
    assert line.startswith("✗ ENCRYPTION_KEY") and f"copy the contents of {database}.key" in fix
    assert "Traceback" not in done.stderr


async def test_each_check_fix_adds_something_the_finding_did_not_say(fakes: Fakes, tmp_path: Path) -> None:
    """For bad settings, the fix line is never the finding again or an empty 'set it as described'."""
    env = fakes.env(tmp_path, PORT="70000", RELAY_API_KEY="a", ALLOWED_USERS="alice")
    done = await run_bot("check", env=env, cwd=tmp_path)
    found = failures(done)
    assert len(found) == 3
    for line, fix in found:
        assert fix.startswith("fix: ") and "as described" not in fix
        assert fix.removeprefix("fix: ") not in line


# ----------------------------------------------------------------- --version, playground


def test_version_prints_the_installed_version() -> None:
    """``--version`` says which release runs (the package metadata's version), for bug reports and upgrades."""
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--version"], env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"data-request-bot {importlib.metadata.version('data-request-bot')}\n"


def test_playground_on_a_port_in_use_says_so_in_one_line_naming_port(tmp_path: Path) -> None:
    """The playground's page takes PORT as serve does: a taken port is exit 2 and one line, not a traceback."""
    with closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "bot", "playground"],
            env=clean_env(PORT=str(port)),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr
    (line,) = assert_one_line_per_problem(done.stderr)
    assert line.startswith(f"{PROG} PORT: port {port} is in use"), line
