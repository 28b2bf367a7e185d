"""Two copies of the bot on one PostgreSQL database, one killed -9 in a burst of commands, one in a burst of events.

Both run as real processes (``python -m bot serve``) against the same loopback Slack and Amazon. What either copy
acknowledged is carried through by the copies left: every acknowledged command has one task at Amazon and one
thread in the channel, and every task's completion one reply in its thread, however often its event is relayed
and to whichever copy; the lead (the reconciler, reminders, retention) moves to the survivor when its holder dies.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fakes import FakePrime, FakeSlack, buttons, slack_headers, slash_body, text_of
from harness import envelope
from processes import Fakes, free_port, start_bot
from prometheus_client.parser import text_string_to_metric_families

from core import mask_email

CHANNEL = "C0COMPLY"
SECRET = "two-copies-signing-secret"
RELAY_KEY = "two-copies-relay-key-0123456789"
COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"
COMMANDS = 200
AT_ONCE = 16  # commands, or relayed events, in flight at once
KILL_AT = 96  # the leader dies in the batch of commands that starts here, right after it acknowledged one of them
# Seconds before the killed copy's claims on posts and events lapse (60 by default), for the survivor to take them
# over: still far longer than a call to the loopback fakes takes.
CLAIM_LEASE = 5
WITHIN = 120.0  # seconds the end state may take on a slow, shared machine
LEAD_MOVES_WITHIN = 10.0  # a follower asks every 2 s, and a killed copy's connection ends with it
SHOWN = re.compile(r"s\*\*\*@n[0-9]{3}\.example\.com")  # a shopper's address as the thread shows it


@dataclass
class Copy:
    """One copy of the bot: its process, where it listens and where its output goes."""

    name: str
    process: asyncio.subprocess.Process
    url: str
    log: Path

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


async def start_copy(name: str, fakes: Fakes, tmp_path: Path, *, database_url: str, key: str) -> Copy:
    """``serve`` on its own port, with the one database and key every copy shares; healthy when this returns."""
    port = free_port()
    env = fakes.env(
        tmp_path / name,
        DATABASE_URL=database_url,
        ENCRYPTION_KEY=key,
        CLAIM_LEASE=str(CLAIM_LEASE),
        PORT=str(port),
        RELAY_API_KEY=RELAY_KEY,
        SLACK_SIGNING_SECRET=SECRET,
        LOG_LEVEL="INFO",
    )
    log = tmp_path / f"{name}.log"
    return Copy(name, await start_bot(env, cwd=tmp_path, log=log), f"http://127.0.0.1:{port}", log)


async def leads(http: httpx.AsyncClient, copy: Copy) -> bool:
    """Whether the copy says, on /metrics, that it runs the singleton work."""
    response = await http.get(copy.url + "/metrics")
    response.raise_for_status()
    samples = {s.name: s.value for f in text_string_to_metric_families(response.text) for s in f.samples}
    return samples["data_request_bot_leader"] == 1


async def leader_among(http: httpx.AsyncClient, copies: Sequence[Copy], *, within: float) -> Copy:
    """The copy that leads, once one of them says so; never two at once."""
    async with asyncio.timeout(within):
        while True:
            leading = [copy for copy in copies if await leads(http, copy)]
            assert len(leading) <= 1, [copy.name for copy in leading]
            if leading:
                return leading[0]
            await asyncio.sleep(0.1)  # another process's state: only asking tells


async def command(http: httpx.AsyncClient, copy: Copy, email: str, slack: FakeSlack) -> bool:
    """``/data-request <email>`` to one copy, signed as Slack signs it: whether it was acknowledged."""
    body = slash_body(email, user="U0ALICE", channel=CHANNEL, response_url=slack.response_url("U0ALICE"))
    try:
        response = await http.post(copy.url + "/slack/events", content=body, headers=slack_headers(body, SECRET))
    except httpx.TransportError:  # the copy died with the command in flight: Slack shows the user an error
        return False
    return response.status_code == 200


async def relay(http: httpx.AsyncClient, copy: Copy, event: dict[str, Any]) -> str | None:
    """Relay an event to one copy as EventBridge's API destination does: the relay's ``status``, or None if the
    copy died with the event in flight (EventBridge then sends it again)."""
    try:
        response = await http.post(copy.url + "/buy-with-prime/events", json=event, headers={"x-api-key": RELAY_KEY})
    except httpx.TransportError:
        return None
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


@dataclass
class Channel:
    """The channel as it stands, read in one pass: each shopper's top-level messages and each thread's replies."""

    parents: dict[str, list[dict[str, Any]]]  # by the address as shown (masked)
    replies: dict[str, list[dict[str, Any]]]  # by the thread's ts

    @classmethod
    def read(cls, slack: FakeSlack) -> Channel:
        parents: dict[str, list[dict[str, Any]]] = defaultdict(list)
        replies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for post in slack.posts(CHANNEL):
            if post.get("thread_ts"):
                replies[post["thread_ts"]].append(post)
            else:
                (shown,) = set(SHOWN.findall(text_of(post)))
                parents[shown].append(post)
        return cls(parents, replies)

    def threads_of(self, email: str) -> list[dict[str, Any]]:
        return self.parents.get(mask_email(email), [])

    def replies_to(self, email: str) -> list[dict[str, Any]]:
        return [reply for parent in self.threads_of(email) for reply in self.replies.get(parent["ts"], [])]


async def first_acknowledged(sent: Mapping[str, asyncio.Task[bool]]) -> str:
    """The email of the first of the commands ``sent`` (in the order they were sent) that was acknowledged."""
    for email, command in sent.items():
        if await command:
            return email
    raise AssertionError("none of the commands was acknowledged")


async def first_stored(sent: Sequence[asyncio.Task[str | None]]) -> None:
    """Return once one of the events ``sent`` is stored (or all were answered otherwise)."""
    for relayed in asyncio.as_completed(sent):
        if await relayed == "stored":
            return


async def kill_once_it_posted(victim: Copy, sent: Mapping[str, asyncio.Task[bool]], slack: FakeSlack) -> str:
    """Kill the victim -9 once it acknowledged one of the commands ``sent`` to it (by email) and Slack has made
    that request's thread, before Slack's answer reached the victim (as if it died waiting for it); return
    that command's email. Only the threads of these commands have their answers held: the rest go on."""
    answers, shown = asyncio.Event(), {mask_email(email) for email in sent}
    slack.hold_answers["chat.postMessage"] = answers
    slack.hold_answers_of = lambda args: bool(set(SHOWN.findall(text_of(args))) & shown)
    try:
        email = await first_acknowledged(sent)
        await slack.wait_for(lambda: Channel.read(slack).threads_of(email), timeout=WITHIN)
        victim.process.send_signal(signal.SIGKILL)
        await victim.process.wait()
    finally:
        del slack.hold_answers["chat.postMessage"]
        answers.set()
    return email


def tasks_of(prime: FakePrime, email: str) -> list[str]:
    return [task.task_id for task in prime.tasks.values() if task.email == email]


def completed_threads(slack: FakeSlack) -> int:
    """How many threads have a reply with a Download button: cheap enough to be asked at each Slack call."""
    return len({post["thread_ts"] for post in slack.posts(CHANNEL) if post.get("thread_ts") and buttons(post)})


async def test_two_copies_one_killed_mid_burst_lose_nothing_and_do_nothing_twice(
    fakes: Fakes, postgres_url: str, tmp_path: Path
) -> None:
    """200 commands alternate between two copies in batches; the leader is killed -9 in the middle of a batch,
    once it acknowledged a command of it and Slack made that thread without the answer reaching it; the rest go to
    the survivor, which takes the lead over. The killed copy is started again, as an orchestrator would, and each
    acknowledged command's completion is relayed to one copy or the other, every tenth again to the other and once
    more under a new event id; halfway through, the restarted copy (a follower) is killed -9 too, and what it did
    not answer is relayed again to the survivor. Every acknowledged command ends with one task, one thread and one
    completion reply, the killed copies' ones too."""
    slack, prime = fakes.slack, fakes.prime
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    emails = [f"shopper@n{i:03d}.example.com" for i in range(COMMANDS)]
    acknowledged: dict[str, str] = {}  # email -> the name of the copy that acknowledged it
    copies: list[Copy] = []
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            for name in ("a", "b"):
                copies.append(await start_copy(name, fakes, tmp_path, database_url=postgres_url, key=key))
            victim = await leader_among(http, copies, within=LEAD_MOVES_WITHIN)
            (survivor,) = (copy for copy in copies if copy is not victim)

            for start in range(0, COMMANDS, AT_ONCE):
                batch: dict[str, tuple[Copy, asyncio.Task[bool]]] = {}
                for index in range(start, min(start + AT_ONCE, COMMANDS)):
                    copy = copies[index % 2] if victim.alive else survivor
                    batch[emails[index]] = copy, asyncio.create_task(command(http, copy, emails[index], slack))
                if start == KILL_AT:
                    to_victim = {email: sent for email, (copy, sent) in batch.items() if copy is victim}
                    cut_off = await kill_once_it_posted(victim, to_victim, slack)
                for email, (copy, sent) in batch.items():
                    if await sent:
                        acknowledged[email] = copy.name
                if start == KILL_AT:
                    assert await leader_among(http, [survivor], within=LEAD_MOVES_WITHIN) is survivor

            restarted = await start_copy(f"{victim.name}-again", fakes, tmp_path, database_url=postgres_url, key=key)
            copies = [survivor, restarted]
            assert not await leads(http, restarted)

            await prime.wait_for(lambda: set(acknowledged) <= {t.email for t in prime.tasks.values()}, timeout=WITHIN)
            deliveries: list[tuple[Copy, dict[str, Any]]] = []  # to which copy, which event
            for index, email in enumerate(acknowledged):
                (task_id,) = tasks_of(prime, email)
                prime.complete(task_id)
                event, to, other = envelope(COMPLETED, task_id), copies[index % 2], copies[(index + 1) % 2]
                deliveries.append((to, event))
                if index % 10 == 0:  # EventBridge delivers it again, to the other copy; Amazon sends it once more
                    deliveries += [(other, event), (to, envelope(COMPLETED, task_id))]
            answers: dict[str, list[str]] = defaultdict(list)  # event id -> the relay's answers to it
            for start in range(0, len(deliveries), AT_ONCE):
                relayed = [
                    (to, event, asyncio.create_task(relay(http, to if to.alive else survivor, event)))
                    for to, event in deliveries[start : start + AT_ONCE]
                ]
                if start == len(deliveries) // 2 // AT_ONCE * AT_ONCE:  # halfway: the follower dies mid-batch
                    await first_stored([sent for to, _, sent in relayed if to is restarted])
                    restarted.process.send_signal(signal.SIGKILL)
                    await restarted.process.wait()
                for _, event, sent in relayed:
                    status = await sent or await relay(http, survivor, event)  # unanswered: sent again
                    answers[event["id"]].append(str(status))
            await slack.wait_for(lambda: completed_threads(slack) >= len(acknowledged), timeout=WITHIN)
    finally:
        for copy in copies:
            if copy.alive:
                copy.process.send_signal(signal.SIGTERM)
                await copy.process.wait()

    assert set(acknowledged.values()) == {"a", "b"} and len(acknowledged) >= COMMANDS - AT_ONCE // 2
    for said in answers.values():  # each event stored once, however often and to whichever copy it was relayed
        assert said.count("stored") <= 1 and set(said) <= {"stored", "duplicate"}, said
    assert sum(len(said) > 1 for said in answers.values()) == len(range(0, len(acknowledged), 10))
    channel = Channel.read(slack)
    for email in acknowledged:
        assert len(tasks_of(prime, email)) == 1, email
        assert len(channel.threads_of(email)) == 1, email
        replies = channel.replies_to(email)
        assert len(replies) == 1 and buttons(replies[0]), (email, [text_of(reply) for reply in replies])
    for email in set(emails) - set(acknowledged):  # stored before the kill but never acknowledged, or never stored
        assert len(tasks_of(prime, email)) <= 1 and len(channel.threads_of(email)) <= 1, email
    assert len(prime.tasks) == sum(len(parents) for parents in channel.parents.values())
    # The thread the victim posted without hearing back: another copy found it in the channel, and went on in it.
    assert acknowledged[cut_off] == victim.name and slack.calls_to("conversations.history")
    assert survivor.process.returncode == 0, survivor.log.read_text()[-3000:]
