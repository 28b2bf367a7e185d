"""Each piece of machinery added for speed, with the Python that switches it off alone in the bot process.

``run.py --without NAME[,NAME]`` runs the snippets before ``serve`` (as ``--bot-prelude`` does), so
the same code is measured with and without a piece, without editing it. ``benchmarks/README.md``
records what each one costs and buys, and the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SWITCHES", "Switch", "prelude"]


@dataclass(frozen=True)
class Switch:
    """One piece: what it is for, and a snippet run in the bot process that takes it out."""

    claim: str
    snippet: str


SWITCHES: dict[str, Switch] = {
    "group_commit": Switch(
        "commands that arrive together are stored together, one statement a step, and commit together",
        "import store._database as m\n"
        "m.Database.run_grouped = lambda self, work: self.run(work)\n"
        "m.Database.run_batched = lambda self, together, item: self.run(lambda db: together(db, [item])[0])\n",
    ),
    "relay_group_commit": Switch(
        "relayed events that arrive together are stored in one statement and commit together",
        # Inbox.add as one statement in its own transaction, one round trip to the connection's thread each.
        "import store._inbox as m\n"
        "async def _add(self, *, event_id, event_type, task_id):\n"
        "    sql = 'INSERT OR IGNORE INTO inbox (event_id, event_type, task_id, received_at) VALUES (?, ?, ?, ?)'\n"
        "    return await self._database.write_once(sql, (event_id, event_type, task_id, self._clock())) == 1\n"
        "m.Inbox.add = _add\n",
    ),
    "relay_body_at_once": Switch(
        "a relayed body that came with its headers is taken as it is, without a timer or a read loop",
        # _read_limited without its first branch: every body read in chunks under the timeout.
        "import asyncio, bot.server as s\n"
        "async def _read(request, limit, *, within):\n"
        "    if request.content_length is not None and request.content_length > limit:\n"
        "        raise s.RelayRejected(413, 'too large')\n"
        "    chunks, size = [], 0\n"
        "    try:\n"
        "        async with asyncio.timeout(within):\n"
        "            async for chunk in request.content.iter_chunked(64 * 1024):\n"
        "                size += len(chunk)\n"
        "                if size > limit:\n"
        "                    raise s.RelayRejected(413, 'too large')\n"
        "                chunks.append(chunk)\n"
        "    except TimeoutError:\n"
        "        raise s.RelayRejected(408, s._TOO_SLOW) from None\n"
        "    return b''.join(chunks)\n"
        "s._read_limited = _read\n",
    ),
    "slash_before_bolt": Switch(
        "/data-request over HTTP answered without Bolt's dispatch (bot/slash.py), verified as Bolt verifies it",
        # No body is taken as the command: every request goes through Bolt, as before bot/slash.py.
        "import bot.slash as s\ns.SlashCommand.fields = lambda self, body, **kw: None\n",
    ),
    "foreground_first": Switch(
        "background units (outbox, inbox, reconciler, reminders, Home refreshes, task starts) go one at a time",
        # As many background units in the connection thread's queue as there are: one FIFO queue for everything.
        "import store._database as m\nm.BEHIND_AT_ONCE = 1_000_000\n",
    ),
    "foreground_gate": Switch(
        "background items (posts, starts, events applied, Home refreshes, polls) give way to requests in flight",
        # give_way() returns at once: every item starts whatever is being answered (core/_foreground.py).
        "import core._foreground as m\nasync def _go(self):\n    return None\nm.Foreground.give_way = _go\n",
    ),
    "start_slots": Switch(
        "at most two new requests start at once (a semaphore of 2)",
        # start_in_turn without its slot, where the command and the outbox's thread-opened hook look it up.
        "import handlers.commands as c, bot.workers as w\n"
        "async def start_in_turn(deps, request_id, *, reply=None):\n"
        "    await c.advance(deps.flow, request_id, reply=reply)\n"
        "c.start_in_turn = w.start_in_turn = start_in_turn\n",
    ),
    "gc_freeze": Switch(
        "start-up objects are frozen out of the garbage collector's full collections",
        "import gc\ngc.freeze = lambda: None\n",
    ),
    "process_before_response": Switch(
        "Bolt answers when the listener returns, not on its 10 ms poll for ack()",
        "import slack_bolt.async_app as a\n"
        "_init = a.AsyncApp.__init__\n"
        "def _no_pbr(self, *args, **kw):\n"
        "    kw['process_before_response'] = False\n"
        "    _init(self, *args, **kw)\n"
        "a.AsyncApp.__init__ = _no_pbr\n",
    ),
    "one_session": Switch(
        "one aiohttp session for every Slack call, so connections are reused",
        "import bot.clients as r\n"
        "_build = r.build_slack_client\n"
        "def _no_session(settings, **kw):\n"
        "    kw.pop('session', None)\n"
        "    return _build(settings, **kw)\n"
        "r.build_slack_client = _no_session\n",
    ),
    "synchronous_normal": Switch(
        "SQLite syncs the WAL at checkpoints (synchronous=NORMAL), not at every commit (FULL)",
        "import store._database as m\n"
        "_prepare = m._prepare\n"
        "def _full(db):\n"
        "    _prepare(db)\n"
        "    db.execute('PRAGMA synchronous = FULL')\n"
        "m._prepare = _full\n",
    ),
}


def prelude(names: str) -> str:
    """The snippets for a comma-separated list of switch names, in that order; SystemExit on an unknown one."""
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SWITCHES]
    if unknown:
        raise SystemExit(f"--without: unknown {', '.join(unknown)}; known: {', '.join(SWITCHES)}")
    return "".join(SWITCHES[name].snippet for name in chosen)
