"""Running the bot as an operator does, in a real subprocess, against the loopback fakes."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
from fakes import FakePrime, FakeSlack

__all__ = ["Fakes", "Finished", "clean_env", "free_port", "run_bot", "start_bot", "wait_until_healthy"]

# Only what a process needs to run (PYTHONPATH: the code under test, where it is not the installed one); no
# setting of the bot leaks in from the outer environment.
PASSED_THROUGH = ("PATH", "PYTHONPATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "SYSTEMROOT")


def clean_env(**settings: str) -> dict[str, str]:
    """The outer environment minus anything the bot reads, plus ``settings``."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    return {**env, **settings}


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


async def run_bot(*args: str, env: dict[str, str], cwd: Path) -> Finished:
    """Run ``python -m bot <args>`` to the end while this event loop keeps serving the fakes."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(), stderr.decode())


@dataclass
class Fakes:
    slack: FakeSlack
    prime: FakePrime

    def env(self, workdir: Path, **overrides: str) -> dict[str, str]:
        """A complete HTTP-mode configuration pointing at the fakes."""
        settings = {
            "SLACK_BOT_TOKEN": self.slack.token,
            "SLACK_SIGNING_SECRET": "cli-test-signing-secret",
            "SLACK_API_URL": self.slack.api_url,
            "BWP_API_URL": self.prime.api_url,
            "BWP_TOKEN_URL": self.prime.token_url,
            "BWP_CLIENT_ID": self.prime.client_id,
            "BWP_CLIENT_SECRET": self.prime.client_secret,
            "BWP_TARGET_ID": self.prime.target_id,
            "DATABASE_PATH": str(workdir / "data" / "requests.db"),
            "ALLOWED_USERS": "U0ALICE",
            "IDENTITY_VERIFICATION": "off",  # most tests download at once; verification tests set required
        }
        return clean_env(**{**settings, **overrides})


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_healthy(process: asyncio.subprocess.Process, url: str, log: Path) -> None:
    """Poll /healthz for at most 20 s: the other process gives no signal to await, so short polls it is."""
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(200):
            if process.returncode is not None:
                raise AssertionError(f"serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"serve was not healthy within 20 s:\n{log.read_text()}")


async def start_bot(
    env: dict[str, str], *, cwd: Path, log: Path, open_files: int | None = None
) -> asyncio.subprocess.Process:
    """``python -m bot serve`` in the background, its output appended to ``log``; healthy when this returns.

    ``open_files`` is the process's limit on open file descriptors (RLIMIT_NOFILE), as ``ulimit -n`` sets it.
    """

    def limit_open_files() -> None:  # in the child, before it runs the bot
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, hard))

    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=out,
            preexec_fn=None if open_files is None else limit_open_files,
        )
    await wait_until_healthy(process, f"http://127.0.0.1:{env['PORT']}/healthz", log)
    return process
