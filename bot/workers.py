"""The handlers' side of the bot, assembled: the ``Flow`` and the ``Desk``, and the loops that run beside them.

Each loop (outbox, inbox, reconciler, reminders, retention, the database's WAL checkpoints, and the allowed
group's reader) runs as one supervised task until ``stop``; each is given only what it uses.
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
from core import Background, Outages, RequestKind, Wakeup, supervise
from handlers import notices
from handlers.access import Authorizer
from handlers.cases import HomeTab, Reminders, Retention
from handlers.commands import start_in_turn
from handlers.context import Counters, Desk, Flow, Permalinks
from handlers.events import InboxWorker
from handlers.kinds import KINDS
from handlers.lifecycle import post_abandoned
from handlers.outbox import OutboxSender
from handlers.reconcile import Reconciler
from store import Store, behind

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
    checkpoints: Loop  # the store's WAL checkpoints, off the command path (store/_checkpoints.py)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, *, also: Mapping[str, Loop] | None = None) -> None:
        """Run every loop (and ``also``'s, by name) as a supervised task: one that fails is restarted."""
        loops: dict[str, Loop] = {
            "outbox": self.outbox.run,
            "inbox": self.inbox.run,
            "reconciler": self.reconciler.run,
            "reminders": self.reminders.run,
            "retention": self.retention.run,
            "checkpoints": self.checkpoints,
        }
        if self.read_usergroup:
            loops["usergroup"] = self.authorizer.run  # refreshed in the background, never waited on by an ack
        loops.update(also or {})
        # Every loop's database work waits behind what a person or Amazon waits on (store.behind).
        self.tasks = [asyncio.create_task(behind(supervise(name, run)), name=name) for name, run in loops.items()]

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
) -> tuple[Desk, Workers]:
    """Build the ``Flow`` and the ``Desk`` from the store and the clients, and the loops around them."""
    slack = clients.slack
    outbox = OutboxSender(
        store=store,
        slack=slack,
        base_delay=tuning.outbox_base_delay,
        max_delay=tuning.outbox_max_delay,
        clock=clock,
        outages=outages,
        render=partial(notices.render, kinds=KINDS),
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
        nouns={kind: flow.texts.noun for kind, flow in KINDS.items()},
    )
    flow = Flow(
        store=store,
        prime=clients.prime,
        reconcile_interval=settings.reconcile_interval,
        retry_soon=tuning.retry_soon,
        retry_cap=tuning.retry_cap,
        kinds=KINDS,
        open_thread=outbox.send_for,
        wake_outbox=outbox.wake,
        wake_inbox=inbox_wakeup.ring,
        home_changed=home.changed,
        clock=clock,
        counters=counters,
        hold_day=settings.sandbox_hold_seconds if settings.sandbox else 86_400.0,
    )
    desk = Desk(
        flow=flow,
        slack=slack,
        authorizer=authorizer,
        background=background,
        permalinks=permalinks,
        deadline_days=settings.response_deadline_days,
        kind_defaults={RequestKind.DELETION: {"hold_days": str(settings.deletion_hold_days)}},
    )
    outbox.on_thread_opened = lambda request_id: background.spawn(start_in_turn(desk, request_id), name="thread opened")
    outbox.on_abandoned = lambda entry, code: background.spawn(post_abandoned(flow, entry, code), name="post abandoned")
    workers = Workers(
        outbox=outbox,
        inbox=InboxWorker(
            flow, wakeup=inbox_wakeup, base_backoff=tuning.inbox_base_backoff, max_backoff=tuning.inbox_max_backoff
        ),
        reconciler=Reconciler(
            flow,
            interval=settings.reconcile_interval,
            spacing=tuning.reconcile_spacing,
            spread=tuning.reconcile_spread,
        ),
        reminders=Reminders(store=store, clock=clock, wake_outbox=outbox.wake, counters=counters),
        retention=Retention(store=store, clock=clock, retention_days=settings.retention_days),
        home=home,
        authorizer=authorizer,
        read_usergroup=bool(settings.allowed_usergroup),
        checkpoints=store.checkpoints.run,
    )
    return desk, workers
