"""The handlers' side of the bot, assembled: the ``Flow`` and the ``Desk``, and the loops that run beside them.

Each loop (outbox, inbox, reconciler, reminders, retention, the database's WAL checkpoints, and the allowed
group's reader) runs as one supervised task until ``stop``; each is given only what it uses. The outbox and the
inbox run in every copy of the bot (they claim their rows); the reconciler, reminders, retention and the WAL's
checkpoints run in the leader alone (``store.leadership``: on SQLite the one copy there is).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from bot.clients import Clients
from bot.settings import Settings
from bot.tuning import Tuning
from core import Background, Foreground, Outages, Wakeup, supervise
from handlers import notices
from handlers.commands import start_in_turn
from handlers.desk import Desk, Permalinks
from handlers.flow import Counters, Flow, RequestLocks
from handlers.kinds import KindFlow
from handlers.kinds.registry import defaults, free_text, opened
from handlers.lifecycle import post_abandoned
from handlers.workers.access import Authorizer
from handlers.workers.home import HomeTab
from handlers.workers.inbox import InboxWorker
from handlers.workers.outbox import OutboxSender
from handlers.workers.reconcile import Reconciler
from handlers.workers.reminders import Reminders
from handlers.workers.retention import Retention
from store import Commit, Leadership, Store, behind

__all__ = ["Loop", "Workers", "assemble"]

Loop = Callable[[], Awaitable[None]]


@dataclass
class Workers:
    """The loops that run beside the listeners, and the Home tab and access check they share."""

    outbox: OutboxSender
    inbox: InboxWorker
    reconciler: Reconciler
    reminders: Reminders
    retention: Retention
    home: HomeTab
    authorizer: Authorizer
    read_usergroup: bool  # ALLOWED_USERGROUP is set: its members are read before anyone asks
    checkpoints: Loop | None  # the store's WAL checkpoints, off the command path (store/_checkpoints.py); SQLite's
    leadership: Leadership
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, *, also: Mapping[str, Loop] | None = None) -> None:
        """Run every loop (and ``also``'s, by name) as a supervised task: one that fails is restarted."""
        loops: dict[str, Loop] = {
            "outbox": self.outbox.run,
            "inbox": self.inbox.run,
            "leader": partial(self.leadership.run, self._singletons),
        }
        if self.read_usergroup:
            loops["usergroup"] = self.authorizer.run  # refreshed in the background, never waited on by an ack
        loops.update(also or {})
        self.tasks = [asyncio.create_task(_in_the_background(name, run), name=name) for name, run in loops.items()]

    async def _singletons(self) -> None:
        """The loops only one copy of the bot may run at a time, each supervised, together."""
        loops: dict[str, Loop] = {
            "reconciler": self.reconciler.run,
            "reminders": self.reminders.run,
            "retention": self.retention.run,
        }
        if self.checkpoints is not None:
            loops["checkpoints"] = self.checkpoints
        led = [asyncio.create_task(supervise(name, run), name=name) for name, run in loops.items()]
        self.tasks = [*(task for task in self.tasks if not task.done()), *led]  # by name, as the others are
        try:
            await asyncio.gather(*led)
        finally:  # the lead was lost, or the bot stops
            for task in led:
                task.cancel()
            await asyncio.gather(*led, return_exceptions=True)

    def cancel(self, name: str) -> None:
        """Cancel one loop by its name (Socket Mode's, before its link closes)."""
        for task in self.tasks:
            if task.get_name() == name:
                task.cancel()

    async def stop(self, *, grace: float) -> int:
        """Cancel every loop, send what in-flight work just queued, and let the Slack calls in flight end.

        All of it within ``grace`` seconds: the calls still unanswered then are cancelled, and counted
        in what this returns (the next start looks for their messages before posting them again).
        """
        deadline = asyncio.get_running_loop().time() + grace
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.authorizer.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self.outbox.send_due()
        return await self.outbox.settle(deadline - asyncio.get_running_loop().time())


def assemble(
    settings: Settings,
    *,
    store: Store,
    clients: Clients,
    background: Background,
    outages: Outages,
    counters: Counters,
    tuning: Tuning,
    clock: Callable[[], float],
    kinds: Mapping[str, KindFlow],
    foreground: Foreground,
) -> tuple[Desk, Workers]:
    """Build the ``Flow`` and the ``Desk`` from the store and the clients, and the loops around them, for the
    ``kinds`` of request this bot runs (``handlers.kinds.registry.KINDS``). The background work (posts, starts,
    relayed events applied, Home refreshes, the reconciler's polls) gives way to ``foreground``'s requests."""
    slack = clients.slack
    outbox = OutboxSender(
        store=store,
        slack=slack,
        base_delay=tuning.outbox_base_delay,
        max_delay=tuning.outbox_max_delay,
        clock=clock,
        outages=outages,
        render=partial(notices.render, kinds=kinds),
        opened=opened(kinds),
        claim_lease=settings.claim_lease,
        foreground=foreground,
    )
    inbox_wakeup = Wakeup()
    authorizer = Authorizer(
        allowed_users=settings.allowed_users,
        usergroup=settings.allowed_usergroup,
        everyone=settings.everyone_allowed,
        slack=slack,
        ttl=tuning.usergroup_ttl,
    )
    permalinks = Permalinks(slack)
    home = HomeTab(
        store=store,
        slack=slack,
        permalinks=permalinks,
        authorizer=authorizer,
        background=background,
        clock=clock,
        nouns={kind: flow.texts.noun for kind, flow in kinds.items()},
        foreground=foreground,
    )
    flow = Flow(
        store=store,
        prime=clients.prime,
        reconcile_interval=settings.reconcile_interval,
        retry_soon=tuning.retry_soon,
        retry_cap=tuning.retry_cap,
        kinds=kinds,
        open_thread=outbox.send_for,
        wake_inbox=inbox_wakeup.ring,
        clock=clock,
        counters=counters,
        hold_day=settings.sandbox_hold_seconds if settings.sandbox else 86_400.0,
        locks=RequestLocks(across=store.across.hold if store.postgres else None),
        foreground=foreground,
    )
    desk = Desk(
        flow=flow,
        slack=slack,
        authorizer=authorizer,
        background=background,
        permalinks=permalinks,
        deadline_days=settings.response_deadline_days,
        verification_required=settings.verification_required,
        kind_defaults=defaults(kinds, settings),
    )
    store.after_commit(partial(_signalled, outbox=outbox, home=home))
    outbox.on_thread_opened = lambda request_id: background.spawn(start_in_turn(desk, request_id), name="thread opened")
    outbox.on_abandoned = lambda entry, code: background.spawn(post_abandoned(flow, entry, code), name="post abandoned")
    workers = Workers(
        outbox=outbox,
        inbox=InboxWorker(
            flow,
            wakeup=inbox_wakeup,
            base_backoff=tuning.inbox_base_backoff,
            max_backoff=tuning.inbox_max_backoff,
            claim_lease=settings.claim_lease,
        ),
        reconciler=Reconciler(
            flow,
            interval=settings.reconcile_interval,
            spacing=tuning.reconcile_spacing,
            spread=tuning.reconcile_spread,
        ),
        reminders=Reminders(store=store, clock=clock, counters=counters),
        retention=Retention(
            store=store, clock=clock, retention_days=settings.retention_days, free_text=free_text(kinds)
        ),
        home=home,
        authorizer=authorizer,
        read_usergroup=bool(settings.allowed_usergroup),
        checkpoints=None if store.postgres else store.checkpoints.run,
        leadership=store.leadership(),
    )
    return desk, workers


async def _in_the_background(name: str, run: Loop) -> None:
    """Run a loop supervised, its database work behind what a person or Amazon waits on (``store.behind``).

    The loop's coroutine is made here, inside the task, so a task cancelled before it ever ran (a stop right
    after a start) leaves no coroutine that was never awaited.
    """
    await behind(supervise(name, run))


def _signalled(commit: Commit, *, outbox: OutboxSender, home: HomeTab) -> None:
    """After a commit: posts it queued wake the outbox; a case it changed refreshes the Home tabs."""
    if commit.outbox:
        outbox.wake()
    if commit.cases:
        home.changed()
