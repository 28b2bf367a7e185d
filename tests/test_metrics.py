"""``GET /metrics``: Prometheus text that moves as the bot works, and never names a shopper, task or user."""

from __future__ import annotations

import re
from pathlib import Path

from fakes import text_of
from harness import Harness, SettableClock, envelope, eventually, running_bot
from prometheus_client.parser import text_string_to_metric_families

P = "data_request_bot_"
EMAIL = "jane.shopper@example.com"
LINKED = re.compile(r"^\[(.*)\]\([^)]*\)$")  # an alert's name links to its entry in docs/troubleshooting.md


async def scrape(bot: Harness) -> tuple[dict[tuple[str, frozenset[tuple[str, str]]], float], str]:
    """One scrape, parsed: {(sample name, labels): value}, and the raw text."""
    response = await bot.http.get(bot.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    return samples, response.text


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((P + name, frozenset(labels.items())), 0.0)


async def test_metrics_move_as_the_bot_works_and_carry_no_personal_data(tmp_path: Path) -> None:
    """A request, a throttled Amazon answer, a completion event (and its duplicate and a bad key), a reconciler
    pass, a reminder and an overdue case each move their number; no label holds an email, task id or user id."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock) as bot:
        before, _ = await scrape(bot)
        assert value(before, "cases_open") == 0 and value(before, "relay_events_total", result="stored") == 0

        bot.prime.fail_next["startPersonalDataRetrievalTask"] = ["throttle"]
        task_id, parent = await bot.request(EMAIL)
        bot.prime.complete(task_id)
        event = envelope("PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED", task_id)
        assert (await bot.relay(event)).status_code == 200
        assert (await bot.relay(event)).status_code == 200
        assert (await bot.relay(event, key="wrong-key-wrong-key-wrong-key")).status_code == 401
        await bot.slack.wait_for(lambda: [p for p in bot.replies(parent["ts"]) if "Download" in text_of(p)])
        second_id, _ = await bot.request("second@example.com")
        await bot.runtime.workers.reconciler.reconcile()
        clock.advance(24 * 86_400)  # 6 days before the answer is due: the 7-day reminder
        assert await bot.runtime.workers.reminders.send_due() == 2
        clock.advance(7 * 86_400)  # a day past due
        after, text = await scrape(bot)

    start = "startPersonalDataRetrievalTask"
    assert value(after, "amazon_calls_total", operation=start, outcome="throttled") == 1
    assert value(after, "amazon_calls_total", operation=start, outcome="ok") == 2
    assert value(after, "amazon_calls_total", operation="token", outcome="ok") == 1
    assert value(after, "amazon_calls_total", operation="personalDataRetrievalTask", outcome="ok") >= 1
    assert value(after, "amazon_call_seconds_count", operation=start) == 3
    assert value(after, "slack_calls_total", method="chat.postMessage", outcome="ok") >= 3
    assert value(after, "relay_events_total", result="stored") == 1
    assert value(after, "relay_events_total", result="duplicate") == 1
    assert value(after, "relay_events_total", result="unauthorized") == 1
    assert value(after, "reconciler_passes_total", result="complete") >= 2  # the pass at start, and ours
    assert value(after, "reminders_sent_total") == 2
    assert value(after, "cases", kind="retrieval", status="COMPLETED") == 1
    assert value(after, "cases", kind="retrieval", status="IN_PROGRESS") == 1
    assert value(after, "cases_open") == 2 and value(after, "cases_overdue") == 2
    assert value(after, "inbox_pending") == 0 and value(after, "slack_posts_abandoned") == 0
    assert value(after, "leader") == 1  # SQLite's one copy leads (two copies on PostgreSQL: test_two_copies.py)
    labels = " ".join(f"{k}={v}" for _, pairs in after for k, v in pairs)
    for personal in (EMAIL, "second@example.com", "@", task_id, second_id, "U0ALICE", "U0BOB", "C0COMPLY"):
        assert personal not in labels, personal
    assert EMAIL not in text and task_id not in text


async def test_two_bots_in_one_process_count_apart(tmp_path: Path) -> None:
    """Each runtime has its own registry: one bot's relay events are not the other's."""
    async with running_bot(tmp_path / "a") as one, running_bot(tmp_path / "b") as other:
        assert (await one.relay(envelope("PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED", "t-unknown"))).status_code == 200
        mine, _ = await scrape(one)
        theirs, _ = await scrape(other)
    assert value(mine, "relay_events_total", result="stored") == 1
    assert value(theirs, "relay_events_total", result="stored") == 0


async def test_an_abandoned_slack_post_shows_in_the_metrics(tmp_path: Path) -> None:
    """A thread reply Slack refuses for good (the message itself is wrong) is counted among abandoned posts."""
    async with running_bot(tmp_path) as bot:
        task_id, _ = await bot.request(EMAIL)
        bot.slack.fail["chat.postMessage"] = ["msg_too_long"]
        bot.prime.complete(task_id)
        assert (await bot.relay(envelope("PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED", task_id))).status_code == 200

        async def given_up() -> bool:
            return (await bot.runtime.store.backlog())["outbox_abandoned"] == 1

        await eventually(given_up)
        samples, _ = await scrape(bot)
    assert value(samples, "slack_posts_abandoned") == 1
    assert value(samples, "slack_calls_total", method="chat.postMessage", outcome="msg_too_long") >= 1


async def test_refused_credentials_show_as_their_own_outcome_and_as_an_outage(bot: Harness) -> None:
    """The token endpoint answering 401: the call counts as credentials_refused and the outage gauge is 1."""
    bot.prime.fail_next["token"] = ["401"] * 50
    assert (await bot.slash("refused@example.com")).status_code == 200

    async def refused() -> bool:
        samples, _ = await scrape(bot)
        return value(samples, "amazon_calls_total", operation="token", outcome="credentials_refused") >= 1

    await eventually(refused)
    samples, _ = await scrape(bot)
    assert value(samples, "outage_active", source="buy_with_prime", code="credentialsrefused") == 1


def documented_alerts() -> dict[str, str]:
    """The alert table in docs/operating.md (section "Monitoring"): {alert: PromQL expression}."""
    text = (Path(__file__).parent.parent / "docs" / "operating.md").read_text()
    section = text.split("### Monitoring", 1)[1].split("\n### ", 1)[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| ") and "`data_request_bot" in line]
    return {LINKED.sub(r"\1", cells[0].strip("| ")): cells[1].split("`")[1] for cells in rows}


def firing(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], expression: str) -> bool:
    """Whether ``name{label="v",label!="v"} == 1`` (or ``> 0``) holds for some sample of this scrape."""
    selector, op, threshold = expression.rsplit(" ", 2)
    name, _, matchers = selector.partition("{")
    wanted = re.findall(r'(\w+)(!?=)"([^"]*)"', matchers)
    for (sample, labels), number in samples.items():
        have = dict(labels)
        matches = sample == name and all((have.get(k) == v) == (eq == "=") for k, eq, v in wanted)
        if matches and (number == float(threshold) if op == "==" else number > float(threshold)):
            return True
    return False


async def test_the_docs_alerts_name_exported_metrics_and_fire_on_refused_credentials_and_slack(bot: Harness) -> None:
    """Every metric the docs tell operators to alert on is exported (in HTTP mode, all but the Socket Mode
    ones); with Amazon refusing the credentials and Slack refusing the token, exactly those two outage alerts
    fire, the other Amazon one does not."""
    alerts = documented_alerts()
    bot.prime.fail_next["token"] = ["401"] * 200
    await bot.slash("refused@example.com")
    parent = await bot.slack.wait_for(lambda: bot.parents()[0])
    await bot.slack.wait_for(lambda: bot.replies(parent["ts"])[0])  # "waiting for Buy with Prime"
    bot.slack.token = "xoxb-revoked"
    await bot.slash("second@example.com")

    async def both_refused() -> bool:
        samples, _ = await scrape(bot)
        return value(samples, "outage_active", source="slack", code="invalid_auth") == 1

    await eventually(both_refused)
    samples, text = await scrape(bot)
    for alert, expression in alerts.items():
        exported = f"# TYPE {expression.split('{')[0].split(' ')[0]} " in text
        assert exported != ("Socket Mode only" in alert), expression  # this bot runs in HTTP mode
    credentials, other_amazon, slack = (
        next(e for a, e in alerts.items() if a.startswith(start))
        for start in ("Amazon refuses the credentials", "Amazon refuses the bot for another", "Slack refuses the bot")
    )
    assert firing(samples, credentials) and firing(samples, slack) and not firing(samples, other_amazon)
