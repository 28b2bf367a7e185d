"""Connections that send half a request, or nothing, never take the bot down: a deadline for the headers, an
idle timeout, a cap below the open-file limit, and accept failures told in one line each way."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import resource
import signal
import socket
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fakes import slack_headers, slash_body
from harness import RELAY_KEY, envelope, running_bot
from processes import Fakes, free_port, start_bot

from bot.tuning import Tuning

HALF_A_REQUEST = b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: application/x-www-form-"
SECRET = "connections-test-signing-secret"
CHANNEL = "C0COMPLY"


async def half_sent(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that sends the start of a request's headers and then nothing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HALF_A_REQUEST)
    await writer.drain()
    return reader, writer


async def closed_by_the_bot(reader: asyncio.StreamReader) -> bool:
    """Wait until the bot closes the connection (end of stream or reset); True then."""
    async with asyncio.timeout(20):
        with contextlib.suppress(ConnectionResetError):
            await reader.read()
    return True


def close_all(connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    for _, writer in connections:
        writer.close()


# ----------------------------------------------------------------- in-process: the deadline, the idle timeout, the cap


async def test_a_connection_that_does_not_finish_its_headers_in_time_is_closed(tmp_path: Path) -> None:
    """Half a request's headers, then silence: the bot closes the connection at the headers' deadline."""
    async with running_bot(tmp_path, tuning=replace(Tuning.fast(), header_timeout=0.2)) as bot:
        reader, writer = await half_sent(bot.runtime.port)
        try:
            assert await closed_by_the_bot(reader)
        finally:
            writer.close()
        assert (await bot.http.get(bot.url + "/healthz")).status_code == 200


async def test_a_request_whose_headers_came_in_time_is_answered_after_the_deadline(tmp_path: Path) -> None:
    """The deadline is for the headers alone: a body sent after it has passed is still read and answered."""
    async with running_bot(tmp_path, tuning=replace(Tuning.fast(), header_timeout=0.2)) as bot:
        body = json.dumps(envelope("SOME_EVENT_THE_BOT_IGNORES", "t-1")).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", bot.runtime.port)
        try:
            writer.write(
                b"POST /buy-with-prime/events HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
                + f"x-api-key: {RELAY_KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            )
            await writer.drain()
            later_reader, later_writer = await half_sent(bot.runtime.port)  # its deadline is after the request's
            try:
                assert await closed_by_the_bot(later_reader)
            finally:
                later_writer.close()
            writer.write(body)
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
        assert status_line.startswith(b"HTTP/1.1 200"), status_line


@pytest.mark.parametrize(
    ("path", "header"),
    [("/slack/events", "X-Slack-Request-Timestamp: 1700000000"), ("/buy-with-prime/events", f"x-api-key: {RELAY_KEY}")],
)
async def test_a_body_that_stops_halfway_is_answered_408(tmp_path: Path, path: str, header: str) -> None:
    """Headers in time, then ten bytes of a hundred-byte body and silence: 408 at the body's deadline, and the
    connection is not kept alive."""
    async with running_bot(tmp_path, tuning=replace(Tuning.fast(), body_timeout=0.2)) as bot:
        reader, writer = await asyncio.open_connection("127.0.0.1", bot.runtime.port)
        try:
            writer.write(f"POST {path} HTTP/1.1\r\nHost: bot\r\n{header}\r\nContent-Length: 100\r\n\r\n".encode())
            writer.write(b"0123456789")
            await writer.drain()
            assert (await reader.readline()).startswith(b"HTTP/1.1 408")
            assert b"Connection: close\r\n" in await reader.readuntil(b"\r\n\r\n")
            writer.write(b"x" * 90)  # the rest, which aiohttp reads and drops before closing
            assert await closed_by_the_bot(reader)
        finally:
            writer.close()


async def test_an_idle_connection_is_closed_after_the_idle_timeout(tmp_path: Path) -> None:
    """A connection kept open after its answer, sending nothing more, is closed by the bot."""
    async with running_bot(tmp_path, tuning=replace(Tuning.fast(), idle_timeout=0.2)) as bot:
        reader, writer = await asyncio.open_connection("127.0.0.1", bot.runtime.port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n")
            await writer.drain()
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
            assert await closed_by_the_bot(reader)
        finally:
            writer.close()


async def test_at_the_cap_the_oldest_half_sent_connection_makes_room(tmp_path: Path) -> None:
    """With the cap reached by half-sent connections, a new one closes the oldest of them and is answered."""
    async with running_bot(tmp_path, tuning=replace(Tuning.fast(), max_connections=4)) as bot:
        connections = [await half_sent(bot.runtime.port) for _ in range(4)]
        try:
            assert (await bot.http.get(bot.url + "/healthz")).status_code == 200
            oldest_reader, _ = connections[0]
            assert await closed_by_the_bot(oldest_reader)
        finally:
            close_all(connections)


async def test_at_the_cap_with_no_half_sent_connection_a_new_one_is_refused(tmp_path: Path) -> None:
    """Two kept-alive connections past their headers fill a cap of two: a third is refused, and they still work."""
    async with running_bot(tmp_path, tuning=replace(Tuning.fast(), max_connections=2)) as bot:
        first, second = httpx.AsyncClient(), httpx.AsyncClient()
        async with first, second:
            for client in (first, second):
                assert (await client.get(bot.url + "/healthz")).status_code == 200
            reader, writer = await asyncio.open_connection("127.0.0.1", bot.runtime.port)
            try:
                assert await closed_by_the_bot(reader)
            finally:
                writer.close()
            for client in (first, second):  # their kept-alive connections still answer
                assert (await client.get(bot.url + "/healthz")).status_code == 200


# ----------------------------------------------------------------- a real process under a low open-file limit


async def test_half_sent_connections_beyond_the_open_file_limit_leave_healthz_and_commands_answering(
    fakes: Fakes, tmp_path: Path
) -> None:
    """Under ``ulimit -n 128``, 200 connections that send half a request and stay open: /healthz and a signed
    command are answered at once, and the log says so in one line (no traceback, no "Too many open files")."""
    port = free_port()
    env = fakes.env(
        tmp_path,
        PORT=str(port),
        SLACK_SIGNING_SECRET=SECRET,
        ENCRYPTION_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        LOG_LEVEL="INFO",
    )
    log = tmp_path / "bot.log"
    url = f"http://127.0.0.1:{port}"
    process = await start_bot(env, cwd=tmp_path, log=log, open_files=128)
    connections = []
    try:
        connections = [await half_sent(port) for _ in range(200)]
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(url + "/healthz")).status_code == 200
            body = slash_body(
                "jane@example.com", user="U0ALICE", channel=CHANNEL, response_url=fakes.slack.response_url("U0ALICE")
            )
            command = await http.post(url + "/slack/events", content=body, headers=slack_headers(body, SECRET))
            assert command.status_code == 200
            await fakes.prime.wait_for(lambda: next(iter(fakes.prime.tasks.values()), None), timeout=10)
            await fakes.slack.wait_for(lambda: fakes.slack.posts(CHANNEL), timeout=10)
    finally:
        close_all(connections)
        process.send_signal(signal.SIGTERM)
        await process.wait()
    written = log.read_text()
    assert process.returncode == 0, written[-2000:]
    assert "Traceback" not in written and "Too many open files" not in written, written[-2000:]
    about_connections = [line for line in written.splitlines() if "bot.listener" in line]
    assert len(about_connections) <= 2, about_connections
    assert "connections are open, the most allowed" in about_connections[0]


async def test_a_burst_queued_while_the_bot_was_paused_is_accepted_without_running_out_of_descriptors(
    fakes: Fakes, tmp_path: Path
) -> None:
    """Under ``ulimit -n 128``, the cap's 64 connections half-sent, then the bot stopped (SIGSTOP) while 120 more
    connect: the kernel completes as many as the listening socket's queue holds. Resumed, the bot takes them
    from the queue a few at a time, so it never holds more descriptors than it has, and the log never says
    "Too many open files"."""
    port = free_port()
    env = fakes.env(
        tmp_path, PORT=str(port), ENCRYPTION_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(), LOG_LEVEL="INFO"
    )
    log = tmp_path / "bot.log"
    process = await start_bot(env, cwd=tmp_path, log=log, open_files=128)
    connections = []
    queued: list[socket.socket] = []
    try:
        connections = [await half_sent(port) for _ in range(64)]
        process.send_signal(signal.SIGSTOP)
        for _ in range(120):  # not awaited: the kernel finishes each handshake while the bot is stopped
            queued.append(sock := socket.socket())
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
        process.send_signal(signal.SIGCONT)
        async with httpx.AsyncClient(timeout=20) as http:
            assert (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    finally:
        process.send_signal(signal.SIGCONT)
        for sock in queued:
            sock.close()
        close_all(connections)
        process.send_signal(signal.SIGTERM)
        await process.wait()
    written = log.read_text()
    assert process.returncode == 0, written[-2000:]
    assert "Traceback" not in written and "Too many open files" not in written, written[-2000:]


@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="lowers the running bot's limit with prlimit (Linux)")
async def test_accepts_failing_for_want_of_descriptors_are_one_line_then_one_when_they_work_again(
    fakes: Fakes, tmp_path: Path
) -> None:
    """The running bot's open-file limit lowered to what it holds plus four (below its cap): connections beyond
    that cannot even be accepted. The log says so once, then once when they can again; no traceback."""
    port = free_port()
    env = fakes.env(tmp_path, PORT=str(port), ENCRYPTION_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode())
    log = tmp_path / "bot.log"
    process = await start_bot(env, cwd=tmp_path, log=log)
    connections = []
    try:
        held = len(os.listdir(f"/proc/{process.pid}/fd"))
        hard = resource.prlimit(process.pid, resource.RLIMIT_NOFILE)[1]
        resource.prlimit(process.pid, resource.RLIMIT_NOFILE, (held + 4, hard))
        connections = [await half_sent(port) for _ in range(12)]  # the kernel queues those not accepted
        await wait_for_line(log, "cannot accept connections")
        close_all(connections)
        # New connections, one at a time, until one is accepted a while after the last failure (the end).
        async with asyncio.timeout(30):
            while "connections are accepted again" not in log.read_text():
                async with httpx.AsyncClient(timeout=20) as http:
                    assert (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
                await asyncio.sleep(0.2)
    finally:
        close_all(connections)
        process.send_signal(signal.SIGTERM)
        await process.wait()
    written = log.read_text()
    assert "Traceback" not in written, written[-3000:]
    about_accepts = [line for line in written.splitlines() if "bot.listener" in line]
    assert len(about_accepts) == 2, about_accepts
    assert re.search(r"ERROR bot.listener: HTTP: cannot accept connections \(Too many open files\)", about_accepts[0])
    assert about_accepts[1].endswith("INFO bot.listener: HTTP: connections are accepted again")


async def wait_for_line(log: Path, text: str) -> None:
    """Poll the other process's log for ``text`` for at most 20 s: it gives no other signal to await."""
    for _ in range(200):
        if text in log.read_text():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} was not logged within 20 s:\n{log.read_text()[-3000:]}")
