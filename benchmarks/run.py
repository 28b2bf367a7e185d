"""Is the bot fast and light? One run, against a bare Bolt app, over loopback HTTP.

Starts the loopback fakes of Slack and Buy with Prime from ``tests/fakes`` (in a
process of their own, so their work does not sit in the load generator's event
loop), then the real bot exactly as an operator does (``python -m bot serve``,
configured through the environment) and, as the baseline, a bare Bolt
``AsyncApp`` that only acks (``benchmarks/bare_bolt.py``). It drives both with
signed requests and measures:

1. command acknowledgement: ``/data-request <email>`` POST to its HTTP 200, at
   concurrency 1 and 32, against the bare Bolt baseline;
2. click to link: a signed Download click to the ephemeral link arriving at Slack;
3. relay ingest: distinct EventBridge envelopes at concurrency 32, the time until
   every task's completion reply is posted, then the same envelopes again;
4. acknowledgement with ALLOWED_USERGROUP whose ``usergroups.users.list`` takes
   5 s: a second bot, commands while its first read of the group is under way
   (cold) and once it has the list (warm);
5. while busy: acks at concurrency 1, 16 and 32 (bare Bolt beside them), Download clicks
   and relay events, each sent right after a burst of 600 commands, while the threads
   and tasks that burst set off are still being opened and started (``--busy-only``
   runs this phase alone);
6. footprint: the bot's peak RSS (before the busy phase, and after it), database bytes
   per request, start-up time.

Prints a table with the targets from the issue and writes JSON to
``benchmarks/results/<timestamp>.json``. Not a test: numbers for a person to
read. ``python benchmarks/run.py [--quick] [--database postgresql://USER@HOST:PORT/DB]``: with
``--database`` the bots keep their state in PostgreSQL, each in an empty database made for the run on that
server and dropped after it (``stores.py``), and the server's CPU for them is its own column.

The load generator uses aiohttp's client. httpx's (``--client httpx``) tops out
near 450 requests/s at concurrency 32 on this machine, with a p99 of about 450 ms
against a server that only answers 200: with it, the concurrency-32 numbers
measure the client. Commands go in rounds, bare Bolt and the bot taking turns,
and each phase reports the CPU every process used, including ``others`` (work on
the machine that is not the benchmark's): a phase marked NOISY shared the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import platform
import re
import secrets
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakes import FakePrime, FakeSlack, block_actions_body, buttons, slack_headers, slash_body  # noqa: E402
from stores import Stores  # noqa: E402  (beside this file)
from switches import SWITCHES, prelude  # noqa: E402  (beside this file)

SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
RELAY_KEY = "bench-relay-key-0123456789abcdef"
SLACK_TOKEN = "xoxb-bench-token"
# One key for every bot of a run: copies of the bot on one PostgreSQL database must seal and open with the same key.
ENCRYPTION_KEY = base64.urlsafe_b64encode(b"benchmark-encryption-key-32bytes").decode()
USER = "U0BENCH"
GROUP = "S0BENCH"
GROUP_LOOKUP_SECONDS = 5.0  # how long the fake Slack takes to answer usergroups.users.list
CHANNEL = "C0BENCH"
BOT_STORE = "data-requests"  # the measured bot's store (Stores.settings): data-requests.db with SQLite
DOWNLOAD_ACTION = "download_data"
COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"
_TASK_ID = r"[A-Za-z0-9._:-]+"  # the fake Amazon's task ids (offline/amazon_tasks.py), no slash
_REPLY_TASK = re.compile(rf"task `({_TASK_ID})`")
_LINK_TASK = re.compile(rf"/download/({_TASK_ID})/")
# The bot's settings (the "Settings" table in docs/operating.md): never inherited from the caller's environment.
_SETTING_NAMES = frozenset(
    {
        "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "BWP_API_URL", "BWP_TOKEN_URL",
        "BWP_CLIENT_ID", "BWP_CLIENT_SECRET", "BWP_TARGET_ID", "BWP_API_VERSION", "RELAY_API_KEY", "DATABASE_PATH",
        "ENCRYPTION_KEY", "NEW_ENCRYPTION_KEY", "ALLOWED_USERS", "ALLOWED_USERGROUP", "RECONCILE_INTERVAL", "PORT",
        "LOG_LEVEL", "LOG_FORMAT", "RESPONSE_DEADLINE_DAYS", "RETENTION_DAYS", "SANDBOX_COMPLETE_AFTER", "PUBLIC_URL",
        "IDENTITY_VERIFICATION", "DATABASE_URL",
    }
)  # fmt: skip


# ======================================================================= the fakes' process


class BenchSlack(FakeSlack):
    """FakeSlack, plus indexes the benchmark reads: completion replies per task, ephemeral links per task."""

    def __init__(self) -> None:
        super().__init__(token=SLACK_TOKEN, usergroups={GROUP: [USER]})
        self.parents = 0
        self.total = 0
        self.replies: dict[str, list[float]] = {}  # task id -> arrival of each completion reply
        self.reply_args: dict[str, dict[str, Any]] = {}  # task id -> the first completion reply, as posted
        self.ephemerals: dict[str, float] = {}  # task id -> arrival of its first link
        self.waiters: dict[str, asyncio.Future[float]] = {}
        # scale.py's black box: when each response_url post and each Home tab publish arrived
        self.arrivals: dict[str, float] = {}  # "response:<path>" or "home:<user>:<n>" -> arrival
        self.arrival_waiters: dict[str, asyncio.Future[float]] = {}
        self.home_publishes: dict[str, int] = {}

    def _arrived(self, key: str) -> None:
        now = self.arrivals.setdefault(key, time.monotonic())
        if (waiter := self.arrival_waiters.pop(key, None)) is not None and not waiter.done():
            waiter.set_result(now)

    def _handle(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        answer = super()._handle(method, args)
        now = time.monotonic()
        self.total += 1
        if not answer.get("ok"):
            return answer
        if method == "chat.postMessage" and not args.get("thread_ts"):
            self.parents += 1
        elif method == "chat.postMessage":
            found = [b for b in buttons(args) if b.get("action_id") == DOWNLOAD_ACTION]
            match = _REPLY_TASK.search(json.dumps(args.get("blocks")))
            if found and match:
                self.replies.setdefault(match.group(1), []).append(now)
                self.reply_args.setdefault(match.group(1), dict(args))
        elif method == "views.publish":
            user = str(args.get("user_id"))
            self.home_publishes[user] = count = self.home_publishes.get(user, 0) + 1
            self._arrived(f"home:{user}:{count}")
        elif method == "chat.postEphemeral" and (match := _LINK_TASK.search(json.dumps(args.get("blocks")))):
            task_id = match.group(1)
            self.ephemerals.setdefault(task_id, now)
            if (waiter := self.waiters.pop(task_id, None)) is not None and not waiter.done():
                waiter.set_result(now)
        return answer

    async def _api(self, request: Any) -> Any:
        if request.match_info["method"] == "usergroups.users.list":
            await asyncio.sleep(GROUP_LOOKUP_SECONDS)  # a slow Slack: no acknowledgement may wait for this
        return await super()._api(request)

    async def _response(self, request: Any) -> Any:
        # The benchmark makes response_urls up without asking; every one belongs to the benchmark's user.
        self.response_owner.setdefault(f"{self.base_url}{request.path}", USER)
        answer = await super()._response(request)
        if answer.status == 200:
            self._arrived(f"response:{request.path}")
        return answer


class BenchPrime(FakePrime):
    """FakePrime with its document validation memoised (the bot sends the same few documents) and timed."""

    def __init__(self) -> None:
        super().__init__()
        self._checked: dict[tuple[str, str | None], Any] = {}
        self.timings: list[float] = []

    def _check(self, query: str, operation_name: str | None) -> Any:
        key = (query, operation_name)
        if key not in self._checked:
            self._checked[key] = super()._check(query, operation_name)
        return self._checked[key]

    async def _graphql(self, request: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super()._graphql(request)
        finally:
            self.timings.append(time.perf_counter() - started)


async def serve_fakes() -> None:
    """Run both fakes and a small control API on loopback until SIGTERM; print their URLs as one JSON line."""
    from aiohttp import web

    slack, prime = BenchSlack(), BenchPrime()
    await slack.start()
    await prime.start()

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "parents": slack.parents,
                "slack_calls": slack.total,
                "prime_calls": len(prime.requests) + prime.token_requests,
                "tasks": len(prime.tasks),
                "completion_replies": sum(len(v) for v in slack.replies.values()),
                "home_publishes": slack.home_publishes,
            }
        )

    async def complete(request: web.Request) -> web.Response:
        body = await request.json()
        limit = body.get("count")
        done = []
        for task in list(prime.tasks.values()):
            if limit is not None and len(done) >= limit:
                break
            if task.status == "IN_PROGRESS":
                prime.complete(task.task_id)
                done.append(task.task_id)
        return web.json_response({"task_ids": done})

    async def replies(request: web.Request) -> web.Response:
        wanted = (await request.json())["task_ids"]
        return web.json_response({t: slack.reply_args[t] for t in wanted if t in slack.reply_args})

    async def summary(request: web.Request) -> web.Response:
        wanted = (await request.json()).get("task_ids") or list(prime.tasks)
        counts = [len(slack.replies.get(t, ())) for t in wanted]
        arrivals = [slack.replies[t][0] for t in wanted if t in slack.replies]
        return web.json_response(
            {
                "tasks": len(wanted),
                "missing": sum(1 for c in counts if c == 0),
                "twice": sum(1 for c in counts if c > 1),
                "last_at": max(arrivals, default=None),
            }
        )

    async def wait_ephemeral(request: web.Request) -> web.Response:
        task_id = request.query["task_id"]
        if task_id in slack.ephemerals:
            return web.json_response({"at": slack.ephemerals[task_id]})
        waiter = slack.waiters.setdefault(task_id, asyncio.get_running_loop().create_future())
        try:
            at = await asyncio.wait_for(asyncio.shield(waiter), float(request.query.get("timeout", "10")))
        except TimeoutError:
            return web.json_response({"at": None}, status=504)
        return web.json_response({"at": at})

    async def wait_arrival(request: web.Request) -> web.Response:
        key = request.query["key"]
        if key in slack.arrivals:
            return web.json_response({"at": slack.arrivals[key]})
        waiter = slack.arrival_waiters.setdefault(key, asyncio.get_running_loop().create_future())
        try:
            at = await asyncio.wait_for(asyncio.shield(waiter), float(request.query.get("timeout", "10")))
        except TimeoutError:
            return web.json_response({"at": None}, status=504)
        return web.json_response({"at": at})

    async def timings(request: web.Request) -> web.Response:
        values = list(prime.timings)
        if request.method == "POST":
            prime.timings.clear()
        return web.json_response({"graphql_seconds": values})

    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_post("/complete", complete)
    app.router.add_post("/replies", replies)
    app.router.add_post("/summary", summary)
    app.router.add_get("/wait_ephemeral", wait_ephemeral)
    app.router.add_get("/wait_arrival", wait_arrival)
    app.router.add_route("*", "/timings", timings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    urls = {
        "control": f"http://127.0.0.1:{sock.getsockname()[1]}",
        "slack_base": slack.base_url,
        "slack_api_url": slack.api_url,
        "prime_api_url": prime.api_url,
        "prime_token_url": prime.token_url,
        "client_id": prime.client_id,
        "client_secret": prime.client_secret,
        "target_id": prime.target_id,
    }
    print(json.dumps(urls), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await prime.stop()
    await slack.stop()


def wait_for_quiet(limit: float, *, threshold: float = 0.25) -> float:
    """Wait (at most ``limit`` seconds) until the machine has been almost idle for a second; return its load."""
    deadline = time.monotonic() + limit
    while True:
        before = machine_busy_seconds()
        time.sleep(1.0)
        busy = machine_busy_seconds() - before
        if busy < threshold or time.monotonic() >= deadline:
            return busy
        print(f"  (the machine is busy with something else: {busy:.0%} of a core; waiting)")


# ======================================================================= the load generator's client


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class Http:
    """The load generator's HTTP client: aiohttp's by default, httpx's with ``--client httpx``.

    httpx cannot keep up at concurrency 32 on this machine (about 450 requests/s and a p99
    of about 450 ms against an aiohttp server that only answers 200), so with it the
    benchmark measures the client, not the servers.
    """

    def __init__(self, kind: str, connections: int) -> None:
        self.kind = kind
        self.connections = connections
        self._aiohttp: aiohttp.ClientSession | None = None
        self._httpx: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Http:
        if self.kind == "httpx":
            limits = httpx.Limits(max_connections=self.connections, max_keepalive_connections=self.connections)
            self._httpx = httpx.AsyncClient(timeout=60.0, limits=limits)
        else:
            connector = aiohttp.TCPConnector(limit=self.connections, limit_per_host=self.connections)
            self._aiohttp = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._httpx is not None:
            await self._httpx.aclose()
        if self._aiohttp is not None:
            await self._aiohttp.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | str | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        if json_body is not None:
            content, headers = json.dumps(json_body), {"content-type": "application/json", **(headers or {})}
        if self._httpx is not None:
            response = await self._httpx.request(method, url, content=content, headers=headers)
            return Reply(response.status_code, response.content)
        assert self._aiohttp is not None
        async with self._aiohttp.request(method, url, data=content, headers=headers) as answer:
            return Reply(answer.status, await answer.read())

    async def get(self, url: str) -> Reply:
        return await self.request("GET", url)

    async def post(self, url: str, **kwargs: Any) -> Reply:
        return await self.request("POST", url, **kwargs)


# ======================================================================= processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    startup: float = math.nan

    def stop(self, timeout: float = 20.0) -> tuple[int | None, float]:
        """SIGTERM, then wait (SIGKILL after ``timeout``); return (exit status, seconds to stop)."""
        if self.popen.poll() is not None:
            return self.popen.returncode, 0.0
        started = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
        return self.popen.returncode, time.monotonic() - started

    def memory(self) -> dict[str, float]:
        """VmHWM (peak RSS) and VmRSS in MB, from /proc."""
        out: dict[str, float] = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    out[key] = int(value.split()[0]) / 1024
        return out


Rounds = Callable[[argparse.Namespace, dict[str, str], Path, list["Proc"]], Awaitable[list[Any]]]


def run_rounds(args: argparse.Namespace, measure: Rounds, *, name: str) -> int:
    """Start the fakes, run ``measure``'s rounds beside them, print the rounds' medians and keep them all in
    ``<results>/<name>-<time>.json`` (the CPU scripts' common frame)."""
    prelude(args.without or "")
    rounds = beside_fakes(name, lambda fakes, workdir, procs: measure(args, fakes, workdir, procs))
    medians = {key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]}
    print(f"median of {len(rounds)} rounds: {medians}")
    config = {**vars(args), "bot_path": str(args.bot_path or ROOT), "results": str(args.results)}
    out = args.results / f"{name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    args.results.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": config, "rounds": rounds, "median": medians}, indent=2) + "\n")
    return 0


def beside_fakes(
    name: str,
    measure: Callable[[dict[str, str], Path, list[Proc]], Awaitable[Any]],
    *,
    finally_: Callable[[], None] = lambda: None,
) -> Any:
    """``measure(fakes, workdir, procs)`` with the fakes up in a temporary folder; then every process in
    ``procs`` (the fakes and whatever ``measure`` started) is stopped, and ``finally_`` runs."""
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        workdir = Path(tmp)
        fakes_proc, fakes = start_fakes(workdir)
        procs.append(fakes_proc)
        try:
            return asyncio.run(measure(fakes, workdir, procs))
        finally:
            for proc in reversed(procs):
                proc.stop()
            finally_()


def start_fakes(workdir: Path) -> tuple[Proc, dict[str, str]]:
    log = workdir / "fakes.log"
    with log.open("wb") as err:
        popen = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "_fakes"], stdout=subprocess.PIPE, stderr=err, cwd=ROOT
        )
    proc = Proc("fakes", popen, log)
    assert popen.stdout is not None
    ready, _, _ = select.select([popen.stdout], [], [], 60)
    line = popen.stdout.readline() if ready else b""
    if not line:
        proc.stop()
        raise SystemExit(f"the fakes did not start; see {log}:\n{log.read_text()[-2000:]}")
    return proc, json.loads(line)


def bot_env(fakes: dict[str, str], workdir: Path, port: int, *, store: dict[str, str] | None = None) -> dict[str, str]:
    """The bot's settings for a run; ``store`` (``Stores.settings``) says where it keeps its state (by default
    ``data-requests.db`` in ``workdir``)."""
    env = {k: v for k, v in os.environ.items() if k not in _SETTING_NAMES}
    env.update(
        SLACK_BOT_TOKEN=SLACK_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fakes["slack_api_url"],
        BWP_API_URL=fakes["prime_api_url"],
        BWP_TOKEN_URL=fakes["prime_token_url"],
        BWP_CLIENT_ID=fakes["client_id"],
        BWP_CLIENT_SECRET=fakes["client_secret"],
        BWP_TARGET_ID=fakes["target_id"],
        RELAY_API_KEY=RELAY_KEY,
        ENCRYPTION_KEY=ENCRYPTION_KEY,
        PORT=str(port),
        LOG_LEVEL="WARNING",
        ALLOWED_USERS=USER,
        IDENTITY_VERIFICATION="off",  # the benchmark clicks Download at once
    )
    env.update(store or {"DATABASE_PATH": str(workdir / "data-requests.db")})
    return env


async def launch(name: str, argv: list[str], env: dict[str, str], workdir: Path, port: int) -> Proc:
    """Start a server process and wait for its ``/healthz``; the start-up time is Popen to the first 200."""
    log = workdir / f"{name}.log"
    started = time.monotonic()
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    proc = Proc(name, popen, log, url=f"http://127.0.0.1:{port}")
    async with Http("aiohttp", 1) as http:
        deadline = started + 30
        while time.monotonic() < deadline and popen.poll() is None:
            with contextlib.suppress(OSError, aiohttp.ClientError):
                if (await http.get(proc.url + "/healthz")).status == 200:
                    proc.startup = time.monotonic() - started
                    return proc
            await asyncio.sleep(0.005)
    proc.stop()
    raise SystemExit(f"{name} did not become healthy; see {log}:\n{log.read_text()[-3000:]}")


# ======================================================================= measuring


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used (all cores), from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return math.nan
    return sum(values[:3]) / os.sysconf("SC_CLK_TCK")  # user, nice, system: what processes ran


class CpuMeter:
    """CPU used by each process while the meter runs, in percent of one core (200 % is both cores here).

    It may be started and stopped several times; ``read`` reports the total. ``others`` is whatever
    else ran on the machine meanwhile: a large value means the numbers are noisy. With a PostgreSQL
    store on this machine, ``postgresql`` is what the server's processes serving the run's databases
    used (``backends`` lists them; a backend that ends between start and stop loses its last stretch).
    """

    def __init__(
        self, procs: list[Proc], *, running: bool = True, backends: Callable[[], list[int]] | None = None
    ) -> None:
        self.procs = list(procs)
        self.backends = backends
        self.wall = 0.0
        self.used: dict[str, float] = {}
        self._mark: tuple[float, dict[str, float], dict[int, float]] | None = None
        if running:
            self.start()

    def _backend_seconds(self) -> dict[int, float]:
        if self.backends is None:
            return {}
        used = {pid: cpu_seconds(pid) for pid in self.backends()}
        return {pid: seconds for pid, seconds in used.items() if not math.isnan(seconds)}

    def _snapshot(self) -> dict[str, float]:
        used = {p.name: cpu_seconds(p.popen.pid) for p in self.procs}
        return {**used, "load_generator": time.process_time(), "machine": machine_busy_seconds()}

    def start(self) -> None:
        self._mark = (time.monotonic(), self._snapshot(), self._backend_seconds())

    def stop(self) -> None:
        if self._mark is None:
            return
        began, before, backends_before = self._mark
        self._mark = None
        self.wall += time.monotonic() - began
        for name, value in self._snapshot().items():
            self.used[name] = self.used.get(name, 0.0) + value - before[name]
        if self.backends is not None:
            grown = sum(s - backends_before.get(pid, 0.0) for pid, s in self._backend_seconds().items())
            self.used["postgresql"] = self.used.get("postgresql", 0.0) + grown

    def seconds(self, name: str) -> float:
        self.stop()
        return self.used.get(name, math.nan)

    def read(self) -> dict[str, float]:
        self.stop()
        used = dict(self.used)
        # Tick-based accounting: a few % either way is rounding, so others never shows below zero.
        used["others"] = max(0.0, used.pop("machine", 0.0) - sum(used.values()))
        return {name: round(100 * seconds / max(1e-9, self.wall)) for name, seconds in used.items()}


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def dist_ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(pct(values, 50) * 1000, 2),
        "p99_ms": round(pct(values, 99) * 1000, 2),
        "max_ms": round(max(values, default=math.nan) * 1000, 2),
    }


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    last_ok_at: float = 0.0


async def drive(
    n: int,
    concurrency: int,
    send: Callable[[int], Awaitable[Reply]],
    check: Callable[[Reply], str | None],
) -> Load:
    """Send requests 0..n-1 from ``concurrency`` workers; time each from the send to its response."""
    load = Load()
    numbers: Iterator[int] = iter(range(n))

    async def worker() -> None:
        for i in numbers:  # shared: each number is taken by one worker
            started = time.perf_counter()
            response = await send(i)
            load.latencies.append(time.perf_counter() - started)
            problem = check(response)
            if problem is None:
                load.last_ok_at = time.monotonic()
            else:
                load.bad.append(problem)

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    load.seconds = time.monotonic() - started
    return load


def plain_ack(response: Reply) -> str | None:
    if response.status != 200 or response.body.strip():
        return f"{response.status} {response.text[:120]!r}"
    return None


class Driver:
    """The load generator: signed Slack requests and relay events, and the fakes' control API."""

    def __init__(self, http: Http, fakes: dict[str, str], procs: list[Proc], *, stores: Stores | None = None) -> None:
        self.http = http
        self.fakes = fakes
        self.control = fakes["control"]
        self.procs = procs
        self.backends = stores.backends if stores is not None and stores.server is not None else None

    def meter(self, *, running: bool = True) -> CpuMeter:
        return CpuMeter(self.procs, running=running, backends=self.backends)

    async def slash(self, url: str, text: str) -> Reply:
        response_url = f"{self.fakes['slack_base']}/response/{secrets.token_hex(8)}"
        body = slash_body(text, user=USER, channel=CHANNEL, response_url=response_url)
        return await self.http.post(url + "/slack/events", content=body, headers=slack_headers(body, SIGNING_SECRET))

    async def commands(self, url: str, prefix: str, n: int, concurrency: int) -> Load:
        return await drive(n, concurrency, lambda i: self.slash(url, f"{prefix}-{i}@example.com"), plain_ack)

    async def get(self, path: str) -> Any:
        return (await self.http.get(self.control + path)).json()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        return (await self.http.post(self.control + path, json_body=body)).json()

    async def settle(self, bot: Proc, *, tasks: int, within: float = 180.0, inbox_left: int = 0) -> float:
        """Wait until the bot has started ``tasks`` tasks, its outbox is empty, its inbox holds no more than
        ``inbox_left`` events (ones for tasks it never heard of wait there for good), and the fakes are quiet."""
        started = time.monotonic()
        previous: tuple[int, int] | None = None
        while time.monotonic() - started < within:
            stats = await self.get("/stats")
            ready = (await self.http.get(bot.url + "/readyz")).json()
            calls = (stats["slack_calls"], stats["prime_calls"])
            if (
                stats["tasks"] >= tasks
                and not ready.get("outbox_pending")
                and ready.get("inbox_pending", 0) <= inbox_left
                and calls == previous
            ):
                return time.monotonic() - started
            previous = calls
            await asyncio.sleep(0.2)
        print(f"  (warning: the bot did not settle within {within:.0f} s: {stats}, {ready})")
        return time.monotonic() - started


def envelope(task_id: str) -> bytes:
    """An EventBridge API destination body for a completed task, with a fresh event id."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": COMPLETED,
            "source": "aws.partner/buywithprime/bench-events",
            "account": "123456789012",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": "us-east-1",
            "resources": [f"businessProduct/amzn1.bp.test/personalDataRetrievalTask/{task_id}"],
            "detail": {},
        }
    ).encode()


RELAY_HEADERS = {"content-type": "application/json", "x-api-key": RELAY_KEY}


def relay_status(expected: str) -> Callable[[Reply], str | None]:
    def check(response: Reply) -> str | None:
        if response.status != 200:
            return f"{response.status} {response.text[:120]!r}"
        status = response.json().get("status")
        return None if status == expected else f"200 {status}"

    return check


# ======================================================================= the phases


async def phase_commands(driver: Driver, bot: Proc, bare: Proc, args: argparse.Namespace) -> dict[str, Any]:
    """Each level's commands go in ``args.rounds`` rounds, bare Bolt then the bot, so both see the same machine.

    After each of the bot's rounds the benchmark waits until the work those commands set off is done,
    so the baseline is never measured while the bot is still busy. The bot's CPU per command counts
    that work too; its CPU % is over the rounds and that wait.
    """
    out, _ = await alternate_rounds(driver, [("bare_bolt", bare, False), ("bot", bot, True)], args, started=args.warmup)
    for row in out.values():
        row["p99_ratio"] = round(row["bot"]["p99_ms"] / row["bare_bolt"]["p99_ms"], 3)
    return out


async def alternate_rounds(
    driver: Driver, sides: list[tuple[str, Proc, bool]], args: argparse.Namespace, *, started: int
) -> tuple[dict[str, Any], int]:
    """Commands at concurrency 1 and ``args.concurrency``, each level in ``args.rounds`` rounds that go to each
    side in turn (name, server, whether it is a bot whose work is waited out after its round); the rows by
    level, and how many tasks the fakes have started by the end (``started``: before)."""
    out: dict[str, Any] = {}
    for concurrency in (1, args.concurrency):
        quotient, rest = divmod(args.commands, args.rounds)
        sizes = [quotient + (1 if r < rest else 0) for r in range(args.rounds)]
        loads = {name: Load() for name, _, _ in sides}
        meters = {name: driver.meter(running=False) for name, _, _ in sides}
        settling = dict.fromkeys(loads, 0.0)
        for number, size in enumerate(sizes):
            for name, proc, settles in sides:
                meters[name].start()
                load = await driver.commands(proc.url, f"{name}-c{concurrency}-r{number}", size, concurrency)
                if settles:  # a bot's meter also covers the work its commands set off
                    started += size
                    settling[name] += await driver.settle(proc, tasks=started)
                meters[name].stop()
                loads[name].latencies += load.latencies
                loads[name].bad += load.bad
                loads[name].seconds += load.seconds
        row: dict[str, Any] = {}
        for name, proc, settles in sides:
            load = loads[name]
            row[name] = {**dist_ms(load.latencies), "per_second": round(len(load.latencies) / load.seconds, 1)}
            row[name]["cpu_percent"] = meters[name].read()
            row[name]["cpu_ms_per_command"] = round(1000 * meters[name].seconds(proc.name) / len(load.latencies), 2)
            row[name]["not_plain_ack"] = len(load.bad)
            if settles:
                row[name]["settled_after_s"] = round(settling[name], 2)
            if load.bad:
                print(f"  {name} c={concurrency}: {len(load.bad)} answers were not a plain ack, e.g. {load.bad[0]}")
            print(
                f"  {name:9} c={concurrency:<3} p50 {row[name]['p50_ms']:7.2f} ms  p99 {row[name]['p99_ms']:7.2f} ms"
                f"  max {row[name]['max_ms']:7.2f} ms  ({row[name]['per_second']}/s;"
                f" {row[name]['cpu_ms_per_command']} ms CPU each; CPU % {row[name]['cpu_percent']})"
            )
        out[f"c{concurrency}"] = row
    return out, started


async def phase_usergroup(driver: Driver, fakes: dict[str, str], stores: Stores, warm: int) -> dict[str, Any]:
    """A bot allowed by ALLOWED_USERGROUP alone, whose group lookup takes 5 s: ack latency cold and warm.

    Cold: commands sent right after start-up, while the first read of the group is held (answered
    first, decided after). Warm: commands once the list is known (decided on the last known list).
    """
    port = free_port()
    env = bot_env(fakes, stores.workdir, port, store=stores.settings("usergroup"))
    env.pop("ALLOWED_USERS")
    env.update(ALLOWED_USERGROUP=GROUP)
    proc = await launch("usergroup_bot", [sys.executable, "-m", "bot", "serve"], env, stores.workdir, port)
    started = time.monotonic()
    try:

        def answered(response: Reply) -> str | None:
            return None if response.status == 200 else f"{response.status} {response.text[:120]!r}"

        cold = await drive(20, 1, lambda i: driver.slash(proc.url, f"group-cold-{i}@example.com"), answered)
        cold_within = time.monotonic() - started
        await asyncio.sleep(max(0.0, GROUP_LOOKUP_SECONDS + 1.0 - (time.monotonic() - started)))
        hot = await drive(warm, 1, lambda i: driver.slash(proc.url, f"group-warm-{i}@example.com"), plain_ack)
    finally:
        proc.stop()
    return {
        "lookup_seconds": GROUP_LOOKUP_SECONDS,
        "cold": {**dist_ms(cold.latencies), "sent_within_s": round(cold_within, 2), "not_200": len(cold.bad)},
        "warm": {**dist_ms(hot.latencies), "not_plain_ack": len(hot.bad)},
    }


async def completion_replies(driver: Driver, bot: Proc, count: int) -> dict[str, dict[str, Any]]:
    """Complete ``count`` tasks, relay their events, and return each task's completion reply (its Download button)."""
    task_ids = (await driver.post("/complete", {"count": count}))["task_ids"]
    await drive(len(task_ids), 8, lambda i: relay(driver, bot, envelope(task_ids[i])), relay_status("stored"))
    deadline = time.monotonic() + 60
    replies: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and len(replies) < len(task_ids):
        replies = await driver.post("/replies", {"task_ids": task_ids})
        await asyncio.sleep(0.1)
    if len(replies) < len(task_ids):
        raise SystemExit(f"only {len(replies)} of {len(task_ids)} completion replies were posted within 60 s")
    await driver.settle(bot, tasks=0)
    return {task_id: replies[task_id] for task_id in task_ids}


async def click(driver: Driver, bot: Proc, task_id: str, message: dict[str, Any]) -> tuple[float, float | None]:
    """One signed Download click: (seconds to its ack, seconds to its link at Slack, or None without one)."""
    button = next(b for b in buttons(message) if b.get("action_id") == DOWNLOAD_ACTION)
    body = block_actions_body(
        user=USER,
        channel=message["channel"],
        message_ts=message["ts"],
        action_id=DOWNLOAD_ACTION,
        value=button["value"],
        block_id=button["block_id"],
        response_url=f"{driver.fakes['slack_base']}/response/{secrets.token_hex(8)}",
        thread_ts=message.get("thread_ts"),
        message=message,
    )
    headers = slack_headers(body, SIGNING_SECRET)
    clicked = time.monotonic()
    response = await driver.http.post(bot.url + "/slack/events", content=body, headers=headers)
    acked = time.monotonic() - clicked
    if response.status != 200:
        return acked, None
    arrived = (await driver.get(f"/wait_ephemeral?task_id={task_id}&timeout=10"))["at"]
    return acked, None if arrived is None else arrived - clicked


async def phase_clicks(driver: Driver, bot: Proc, clicks: int) -> dict[str, Any]:
    replies = await completion_replies(driver, bot, clicks)
    await driver.post("/timings", {})  # reset: from here on, only the clicks' task queries

    meter = driver.meter()
    to_link: list[float] = []
    acks: list[float] = []
    missing = 0
    for task_id, message in replies.items():
        acked, linked = await click(driver, bot, task_id, message)
        acks.append(acked)
        if linked is None:
            missing += 1
        else:
            to_link.append(linked)
    prime_seconds = (await driver.get("/timings"))["graphql_seconds"]
    return {
        "cpu_percent": meter.read(),
        "click_to_link": dist_ms(to_link),
        "click_ack": dist_ms(acks),
        "fake_prime_query": dist_ms(prime_seconds),
        "no_link": missing,
    }


async def relay(driver: Driver, bot: Proc, body: bytes) -> Reply:
    return await driver.http.post(bot.url + "/buy-with-prime/events", content=body, headers=RELAY_HEADERS)


async def phase_relay(driver: Driver, bot: Proc, args: argparse.Namespace) -> dict[str, Any]:
    task_ids = (await driver.post("/complete", {}))["task_ids"]
    bodies = [envelope(task_ids[i % len(task_ids)]) for i in range(args.events)]
    print(f"  {len(bodies)} events for {len(task_ids)} tasks at concurrency {args.concurrency}")
    meter = driver.meter()
    first = await drive(len(bodies), args.concurrency, lambda i: relay(driver, bot, bodies[i]), relay_status("stored"))
    cpu = meter.read()
    cpu_ms_per_event = 1000 * meter.seconds("bot") / len(bodies)
    applied_at = None
    deadline = time.monotonic() + 120
    summary: dict[str, Any] = {}
    while time.monotonic() < deadline:
        summary = await driver.post("/summary", {"task_ids": task_ids})
        if summary["missing"] == 0:
            applied_at = summary["last_at"]
            break
        await asyncio.sleep(0.05)
    applied_after = None if applied_at is None else max(0.0, applied_at - first.last_ok_at)
    await driver.settle(bot, tasks=0)
    meter = driver.meter()
    again = await drive(
        len(bodies), args.concurrency, lambda i: relay(driver, bot, bodies[i]), relay_status("duplicate")
    )
    again_cpu = meter.read()
    again_cpu_ms_per_event = 1000 * meter.seconds("bot") / len(bodies)
    await driver.settle(bot, tasks=0)
    await asyncio.sleep(1.0)  # anything a duplicate wrongly set off has had time to reach Slack
    final = await driver.post("/summary", {})
    final.pop("last_at", None)  # a monotonic clock reading: meaningless outside this run
    return {
        "events": len(bodies),
        "tasks": len(task_ids),
        "accepted_per_second": round((len(bodies) - len(first.bad)) / first.seconds, 1),
        "latency": dist_ms(first.latencies),
        "cpu_percent": cpu,
        "bot_cpu_ms_per_event": round(cpu_ms_per_event, 3),
        "rejected": len(first.bad),
        "rejected_examples": first.bad[:3],
        "applied_after_last_accepted_s": None if applied_after is None else round(applied_after, 3),
        "unapplied_tasks": summary.get("missing"),
        "duplicates": {
            "accepted_per_second": round(len(bodies) / again.seconds, 1),
            "latency": dist_ms(again.latencies),
            "cpu_percent": again_cpu,
            "bot_cpu_ms_per_event": round(again_cpu_ms_per_event, 3),
            "not_answered_duplicate": len(again.bad),
            "examples": again.bad[:3],
        },
        "all_requests": final,
    }


async def burst(driver: Driver, bot: Proc, label: str, size: int) -> int:
    """``size`` commands at concurrency 32, all acknowledged; returns how many tasks the bot will have started.

    The bot answers each command before its thread is opened and its task started: when this returns,
    that work (outbox sends, task starts, the Home tab) is still running.
    """
    before = (await driver.get("/stats"))["tasks"]
    load = await driver.commands(bot.url, f"burst-{label}", size, 32)
    if load.bad:
        print(f"  burst {label}: {len(load.bad)} answers were not a plain ack, e.g. {load.bad[0]}")
    return int(before) + size


async def phase_busy(driver: Driver, bot: Proc, bare: Proc, args: argparse.Namespace) -> dict[str, Any]:
    """Acks, clicks and relay events sent right after a burst of ``args.burst`` commands, while its work runs.

    Each measurement starts as the burst's last command is acknowledged; ``work_left_s`` is how long the
    bot went on working after the measurement ended (until its outbox and inbox were empty and the fakes
    quiet, with 0.2 s of polling in it): above zero, the whole measurement was taken while it was busy.
    Bare Bolt, which has no background work, answers the same commands just before each round.
    """
    out: dict[str, Any] = {"burst": args.burst}
    for concurrency in (1, 16, args.concurrency):
        loads = {"bare_bolt": Load(), "bot": Load()}
        left: list[float] = []
        for number in range(args.busy_rounds):
            label = f"c{concurrency}-r{number}"
            bare_load = await driver.commands(bare.url, f"busy-bare-{label}", args.busy_commands, concurrency)
            expected = await burst(driver, bot, label, args.burst)
            load = await driver.commands(bot.url, f"busy-bot-{label}", args.busy_commands, concurrency)
            left.append(await driver.settle(bot, tasks=expected + args.busy_commands))
            for name, one in (("bare_bolt", bare_load), ("bot", load)):
                loads[name].latencies += one.latencies
                loads[name].bad += one.bad
        row: dict[str, Any] = {
            name: {**dist_ms(load.latencies), "not_plain_ack": len(load.bad)} for name, load in loads.items()
        }
        row["p99_ratio"] = round(row["bot"]["p99_ms"] / row["bare_bolt"]["p99_ms"], 3)
        row["work_left_s"] = [round(x, 2) for x in left]
        out[f"c{concurrency}"] = row
        print(
            f"  ack c={concurrency:<3} bot p99 {row['bot']['p99_ms']:7.2f} ms,"
            f" bare Bolt {row['bare_bolt']['p99_ms']:7.2f} ms"
            f" ({row['p99_ratio']:.2f}x); work left after: {row['work_left_s']} s"
        )

    replies = list((await completion_replies(driver, bot, args.busy_clicks * args.busy_rounds)).items())
    to_link: list[float] = []
    missing = 0
    left = []
    meter = driver.meter()
    for number in range(args.busy_rounds):
        expected = await burst(driver, bot, f"clicks-r{number}", args.burst)
        for task_id, message in replies[number * args.busy_clicks : (number + 1) * args.busy_clicks]:
            _, linked = await click(driver, bot, task_id, message)
            if linked is None:
                missing += 1
            else:
                to_link.append(linked)
        left.append(await driver.settle(bot, tasks=expected))
    out["clicks"] = {
        "click_to_link": dist_ms(to_link),
        "no_link": missing,
        "work_left_s": [round(x, 2) for x in left],
        "cpu_percent": meter.read(),
    }
    print(
        f"  click to link p99 {out['clicks']['click_to_link']['p99_ms']:.2f} ms;"
        f" work left after: {out['clicks']['work_left_s']} s"
    )

    task_ids = (await driver.post("/complete", {"count": args.busy_events}))["task_ids"]
    bodies = [envelope(task_ids[i % len(task_ids)]) for i in range(args.busy_events)]
    expected = await burst(driver, bot, "relay", args.burst)
    meter = driver.meter()
    first = await drive(len(bodies), args.concurrency, lambda i: relay(driver, bot, bodies[i]), relay_status("stored"))
    cpu = meter.read()
    out["relay"] = {
        "events": len(bodies),
        "accepted_per_second": round((len(bodies) - len(first.bad)) / first.seconds, 1),
        "latency": dist_ms(first.latencies),
        "rejected": len(first.bad),
        "cpu_percent": cpu,
        "work_left_s": round(await driver.settle(bot, tasks=expected), 2),
    }
    rl = out["relay"]
    print(
        f"  relay {rl['accepted_per_second']:.0f} accepted/s, p99 {rl['latency']['p99_ms']:.1f} ms;"
        f" work left after: {rl['work_left_s']} s"
    )
    return out


def footprint(bot: Proc, bare: Proc, stores: Stores, requests: int) -> dict[str, Any]:
    sizes = stores.sizes(BOT_STORE)
    memory, bare_memory = bot.memory(), bare.memory()
    return {
        "bot_peak_rss_mb": round(memory.get("VmHWM", math.nan), 1),
        "bot_rss_mb": round(memory.get("VmRSS", math.nan), 1),
        "bare_bolt_peak_rss_mb": round(bare_memory.get("VmHWM", math.nan), 1),
        "database_files": sizes,
        "requests": requests,
        "database_bytes_per_request": round(stores.grown_bytes(BOT_STORE) / max(1, requests)),
        "bot_startup_s": round(bot.startup, 3),
        "bare_bolt_startup_s": round(bare.startup, 3),
    }


# ======================================================================= the verdict


def verdicts(r: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(what, measured, target, met) for each target in the issue."""
    rows: list[tuple[str, str, str, bool]] = []
    if "commands" in r:
        rows += idle_verdicts(r)
    if b := r.get("busy"):
        rows += busy_verdicts(b)
    fp = r["footprint"]
    rows.append(
        (
            "bot peak RSS",
            f"{fp['bot_peak_rss_mb']:.1f} MB (bare Bolt {fp['bare_bolt_peak_rss_mb']:.1f} MB)",
            "< 90 MB",
            fp["bot_peak_rss_mb"] < 90,
        )
    )
    rows.append(("start-up to healthy", f"{fp['bot_startup_s']:.2f} s", "< 2 s", fp["bot_startup_s"] < 2))
    rows.append(("database bytes per request", f"{fp['database_bytes_per_request']}", "(reported)", True))
    if store := r.get("config", {}).get("store"):
        rows.insert(0, ("store", store["version"], "(reported)", True))
    return rows


def busy_verdicts(b: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """The targets measured right after a burst, while its work runs."""
    rows: list[tuple[str, str, str, bool]] = []
    for key in sorted((k for k in b if k.startswith("c") and k[1:].isdigit()), key=lambda k: int(k[1:])):
        row = b[key]
        rows.append(
            (
                f"busy: command ack p99, c={key[1:]}",
                f"{row['bot']['p99_ms']:.1f} ms (bare Bolt {row['bare_bolt']['p99_ms']:.1f} ms,"
                f" {row['p99_ratio']:.2f}x)",
                "<= 1.0x bare Bolt",
                row["p99_ratio"] <= 1.0 and not row["bot"]["not_plain_ack"],
            )
        )
    clicks = b["clicks"]
    rows.append(
        (
            "busy: click to link p99",
            f"{clicks['click_to_link']['p99_ms']:.1f} ms",
            "<= 25 ms",
            clicks["click_to_link"]["p99_ms"] <= 25 and clicks["no_link"] == 0,
        )
    )
    relay = b["relay"]
    rows.append(
        (
            "busy: relay accepted, c=32",
            f"{relay['accepted_per_second']:.0f}/s (p99 {relay['latency']['p99_ms']:.1f} ms)",
            ">= 2000/s",
            relay["accepted_per_second"] >= 2000 and relay["rejected"] == 0,
        )
    )
    rows.append(("busy: bot peak RSS after the bursts", f"{b['bot_peak_rss_mb']:.1f} MB", "(reported)", True))
    return rows


def idle_verdicts(r: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """The targets measured with the bot doing one thing at a time."""
    rows: list[tuple[str, str, str, bool]] = []
    for key, row in r["commands"].items():
        c = key[1:]
        bot, bare = row["bot"]["p99_ms"], row["bare_bolt"]["p99_ms"]
        rows.append(
            (
                f"command ack p99, c={c}",
                f"{bot:.1f} ms (bare Bolt {bare:.1f} ms, {row['p99_ratio']:.2f}x)",
                "<= 1.25x bare Bolt" + (", < 20 ms" if c == "1" else ""),
                row["p99_ratio"] <= 1.25 and (c != "1" or bot < 20),
            )
        )
    clicks = r["clicks"]
    fake = clicks["fake_prime_query"]["p99_ms"]
    rows.append(
        (
            "click to link p99",
            f"{clicks['click_to_link']['p99_ms']:.1f} ms (fake Amazon p99 {fake:.1f} ms)",
            f"< {50 + fake:.1f} ms (50 + fake)",
            clicks["click_to_link"]["p99_ms"] < 50 + fake and clicks["no_link"] == 0,
        )
    )
    relay = r["relay"]
    rows.append(
        (
            f"relay accepted, c={r['config']['concurrency']}",
            f"{relay['accepted_per_second']:.0f}/s (p99 {relay['latency']['p99_ms']:.1f} ms)",
            ">= 1000/s",
            relay["accepted_per_second"] >= 1000,
        )
    )
    lost = relay["rejected"] + relay["all_requests"]["missing"]
    rows.append(("relay lost (refused, or a task never answered)", str(lost), "0", lost == 0))
    twice = relay["all_requests"]["twice"]
    rows.append(("relay completion replies posted twice", str(twice), "0", twice == 0))
    missed = relay["duplicates"]["not_answered_duplicate"]
    rows.append(
        (
            "relay resent events not recognised as duplicates",
            f"{missed} of {relay['events']}",
            "0",
            missed == 0,
        )
    )
    applied = relay["applied_after_last_accepted_s"]
    rows.append(
        (
            "relay all applied after last accepted",
            "never" if applied is None else f"{applied:.2f} s",
            "<= 30 s",
            applied is not None and applied <= 30,
        )
    )
    if ug := r.get("usergroup"):
        worst = max(ug["cold"]["p99_ms"], ug["warm"]["p99_ms"])
        rows.append(
            (
                f"command ack p99, {ug['lookup_seconds']:.0f} s group lookup",
                f"cold {ug['cold']['p99_ms']:.1f} ms, warm {ug['warm']['p99_ms']:.1f} ms",
                "< 20 ms (no wait on Slack)",
                worst < 20 and not ug["cold"]["not_200"] and not ug["warm"]["not_plain_ack"],
            )
        )
    return rows


def noise(r: dict[str, Any]) -> dict[str, int]:
    """Phases during which other work on the machine used more than a quarter of a core: CPU % by phase."""
    phases: dict[str, dict[str, Any]] = {}
    for key, row in r.get("commands", {}).items():
        for name in ("bare_bolt", "bot"):
            phases[f"commands {name} {key}"] = row[name]["cpu_percent"]
    if "clicks" in r:
        phases["clicks"] = r["clicks"]["cpu_percent"]
        phases["relay"] = r["relay"]["cpu_percent"]
        phases["relay duplicates"] = r["relay"]["duplicates"]["cpu_percent"]
    if "busy" in r:
        phases["busy clicks"] = r["busy"]["clicks"]["cpu_percent"]
        phases["busy relay"] = r["busy"]["relay"]["cpu_percent"]
    return {phase: cpu["others"] for phase, cpu in phases.items() if cpu.get("others", 0) > 25}


def print_table(rows: list[tuple[str, str, str, bool]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    print()
    print(f"| {'measure':<{widths[0]}} | {'result':<{widths[1]}} | {'target':<{widths[2]}} |      |")
    print(f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 2)}|{'-' * (widths[2] + 2)}|------|")
    for what, value, target, met in rows:
        verdict = "" if target == "(reported)" else ("PASS" if met else "MISS")
        print(f"| {what:<{widths[0]}} | {value:<{widths[1]}} | {target:<{widths[2]}} | {verdict:<4} |")


# ======================================================================= main


async def run(args: argparse.Namespace, fakes: dict[str, str], stores: Stores, procs: list[Proc]) -> dict[str, Any]:
    port, bare_port = free_port(), free_port()
    workdir = stores.workdir
    env = bot_env(fakes, workdir, port, store=stores.settings(BOT_STORE))
    print("starting the bot (python -m bot serve) and the bare Bolt baseline ...")
    argv = [sys.executable, "-m", "bot", "serve"]
    before_serve = prelude(args.without or "") + (args.bot_prelude or "")
    if before_serve:  # an experiment: the same bot, with a change made before it starts
        serve = "import sys\nfrom bot.cli import main\nsys.exit(main(['serve']))"
        argv = [sys.executable, "-c", f"{before_serve}\n{serve}"]
    bot = await launch("bot", argv, env, workdir, port)
    procs.append(bot)
    stores.mark_empty(BOT_STORE)
    bare_env = {**env, "PORT": str(bare_port)}
    bare = await launch(
        "bare_bolt", [sys.executable, str(ROOT / "benchmarks" / "bare_bolt.py")], bare_env, workdir, bare_port
    )
    procs.append(bare)
    print(f"  healthy after {bot.startup:.2f} s (bot, pid {bot.popen.pid}), {bare.startup:.2f} s (bare Bolt)")

    async with Http(args.client, args.concurrency + 8) as http:
        driver = Driver(http, fakes, procs, stores=stores)
        results: dict[str, Any] = {}
        print(f"warm-up: {args.warmup} commands to each ...")
        for proc in (bare, bot):
            warm = await driver.commands(proc.url, f"warmup-{proc.name}", args.warmup, 4)
            if warm.bad:
                raise SystemExit(f"{proc.name} did not ack the warm-up commands: {warm.bad[:3]}")
        await driver.settle(bot, tasks=args.warmup)

        if args.busy_only:
            return await busy(driver, bot, bare, stores, args, results)
        print(
            f"1. command acknowledgement: {args.commands} commands at concurrency 1 and {args.concurrency},"
            f" in {args.rounds} rounds alternating bare Bolt and the bot"
        )
        results["commands"] = await phase_commands(driver, bot, bare, args)

        print(f"2. click to link: {args.clicks} Download clicks, one at a time")
        results["clicks"] = await phase_clicks(driver, bot, args.clicks)
        c = results["clicks"]
        print(
            f"  click to link p50 {c['click_to_link']['p50_ms']:.2f} ms  p99 {c['click_to_link']['p99_ms']:.2f} ms"
            f"  (fake Amazon p99 {c['fake_prime_query']['p99_ms']:.2f} ms)"
        )

        print("3. relay ingest")
        results["relay"] = await phase_relay(driver, bot, args)
        rl = results["relay"]
        print(
            f"  {rl['accepted_per_second']:.0f} accepted/s, p99 {rl['latency']['p99_ms']:.1f} ms"
            f" (CPU % {rl['cpu_percent']});"
            f" all applied {rl['applied_after_last_accepted_s']} s after the last accepted"
        )
        dup = rl["duplicates"]
        print(
            f"  duplicates: {dup['accepted_per_second']:.0f}/s, p99 {dup['latency']['p99_ms']:.1f} ms;"
            f" every request: {rl['all_requests']}"
        )
        stats = await driver.get("/stats")
        results["footprint"] = footprint(bot, bare, stores, stats["tasks"])  # before the busy phase's bursts
        await busy(driver, bot, bare, stores, args, results)

        print(f"4. acknowledgement with ALLOWED_USERGROUP and a {GROUP_LOOKUP_SECONDS:.0f} s group lookup")
        results["usergroup"] = await phase_usergroup(driver, fakes, stores, warm=50 if args.quick else 200)
        ug = results["usergroup"]
        print(
            f"  cold (first read under way): p99 {ug['cold']['p99_ms']:.2f} ms, max {ug['cold']['max_ms']:.2f} ms;"
            f" warm: p99 {ug['warm']['p99_ms']:.2f} ms"
        )
    return results


async def busy(
    driver: Driver, bot: Proc, bare: Proc, stores: Stores, args: argparse.Namespace, results: dict[str, Any]
) -> dict[str, Any]:
    print(
        f"5. while busy: right after a burst of {args.burst} commands, {args.busy_commands} commands at"
        f" concurrency 1, 16 and {args.concurrency} ({args.busy_rounds} rounds), {args.busy_clicks} Download"
        f" clicks a round, {args.busy_events} relay events"
    )
    results["busy"] = await phase_busy(driver, bot, bare, args)
    stats = await driver.get("/stats")
    results["busy"]["bot_peak_rss_mb"] = round(bot.memory().get("VmHWM", math.nan), 1)
    results.setdefault("footprint", footprint(bot, bare, stores, stats["tasks"]))
    return results


def main() -> int:
    if sys.argv[1:] == ["_fakes"]:
        asyncio.run(serve_fakes())
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer commands, clicks and events: under a minute")
    parser.add_argument("--commands", type=int, help="commands per concurrency level (default 1000; quick 200)")
    parser.add_argument("--rounds", type=int, help="rounds per concurrency level, alternating (default 5; quick 2)")
    parser.add_argument("--clicks", type=int, help="Download clicks (default 200; quick 50)")
    parser.add_argument("--events", type=int, help="distinct relay events (default 10000; quick 2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="the high concurrency level (default 32)")
    parser.add_argument(
        "--client", choices=("aiohttp", "httpx"), default="aiohttp", help="the load generator's HTTP client"
    )
    parser.add_argument(
        "--bot-prelude",
        metavar="PYTHON",
        help="experiments only: Python code the bot process runs before `serve` (say, a monkeypatch to try a fix)",
    )
    parser.add_argument(
        "--without",
        metavar="NAME[,NAME]",
        help=f"switch pieces of speed machinery off in the bot (benchmarks/switches.py): {', '.join(SWITCHES)}",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        help="seconds to wait, at most, for other work on the machine to end (default 60; quick 10)",
    )
    parser.add_argument("--burst", type=int, default=600, help="commands in each burst of the busy phase")
    parser.add_argument("--busy-commands", type=int, help="commands a round while busy (default 200; quick 100)")
    parser.add_argument("--busy-rounds", type=int, help="bursts per measure while busy (default 3; quick 2)")
    parser.add_argument("--busy-clicks", type=int, default=30, help="Download clicks after each burst")
    parser.add_argument("--busy-events", type=int, default=2000, help="relay events after the burst")
    parser.add_argument("--busy-only", action="store_true", help="only the busy phase (and the footprint)")
    parser.add_argument("--warmup", type=int, default=20, help="commands sent to each server before measuring")
    parser.add_argument(
        "--database",
        metavar="POSTGRESQL_URL",
        help="keep the bot's state in PostgreSQL: a server's URL as a user who may create databases; each run makes"
        " (and drops) empty databases of its own there (default: SQLite files in a temporary folder)",
    )
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results", help="where the JSON goes")
    args = parser.parse_args()
    prelude(args.without or "")  # an unknown name stops here, before anything starts
    args.commands = args.commands or (200 if args.quick else 1000)
    args.rounds = max(1, args.rounds or (2 if args.quick else 5))
    args.clicks = args.clicks or (50 if args.quick else 200)
    args.events = args.events or (2000 if args.quick else 10_000)
    args.busy_commands = args.busy_commands or (100 if args.quick else 200)
    args.busy_rounds = max(1, args.busy_rounds or (2 if args.quick else 3))
    args.quiet_wait = (10.0 if args.quick else 60.0) if args.quiet_wait is None else args.quiet_wait
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the servers are stopped on the way out

    background_load = wait_for_quiet(args.quiet_wait)
    began = time.monotonic()
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        stores = Stores(workdir, args.database)
        store = stores.describe()
        fakes_proc, fakes = start_fakes(workdir)
        procs.append(fakes_proc)
        try:
            results = asyncio.run(run(args, fakes, stores, procs))
            store = stores.describe()
        finally:
            stopped = {p.name: p.stop() for p in reversed(procs)}
            stores.close()
            for proc in procs:
                if proc.name == "bot" and (text := proc.log.read_text(errors="replace").strip()):
                    lines = text.splitlines()
                    print(f"(the bot logged {len(lines)} lines at WARNING or above; last: {lines[-1][:200]})")
    results["config"] = {
        "mode": "quick" if args.quick else "full",
        "commands": args.commands,
        "rounds": args.rounds,
        "clicks": args.clicks,
        "events": args.events,
        "concurrency": args.concurrency,
        "warmup": args.warmup,
        "burst": args.burst,
        "busy_commands": args.busy_commands,
        "busy_rounds": args.busy_rounds,
        "busy_clicks": args.busy_clicks,
        "busy_events": args.busy_events,
        "busy_only": args.busy_only,
        "client": args.client,
        "store": store,
        "without": sorted(filter(None, (n.strip() for n in (args.without or "").split(",")))),
        "bot_prelude": args.bot_prelude,
        "other_load_at_start_cores": round(background_load, 2),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "commit": _git_commit(),
    }
    results["bot_stop"] = {"exit_status": stopped["bot"][0], "seconds": round(stopped["bot"][1], 2)}
    results["total_seconds"] = round(time.monotonic() - began, 1)
    rows = verdicts(results)
    results["verdicts"] = [{"measure": w, "result": v, "target": t, "met": m} for w, v, t, m in rows]
    print_table(rows)
    if noisy := noise(results):
        results["noisy_phases"] = noisy
        print(f"\nNOISY: other processes used this much CPU (% of a core) during these phases: {noisy}")
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{results['total_seconds']} s in all; bot stopped with status {stopped['bot'][0]}; results in {out}")
    return 0


def _git_commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    return None


if __name__ == "__main__":
    sys.exit(main())
