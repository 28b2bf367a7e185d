"""Outside text is not markup: Amazon's words and what users type never become pings, mentions or links."""

from __future__ import annotations

import json
from pathlib import Path

from fakes import text_of
from harness import Harness, SettableClock, ack_text, envelope, running_bot

FAILED = "PERSONAL_DATA_RETRIEVAL_TASK_FAILED"
DAY = 86_400.0
HOSTILE_CODE = "<!channel>"
HOSTILE_MESSAGE = "<https://evil.example/login|Click here> & tell <@U0BOSS>; shopper bob%40shop.example"


async def failed_thread(bot: Harness, email: str) -> tuple[str, dict]:
    """A request whose task Amazon failed with hostile words: (task id, the failure reply in the thread)."""
    task_id, parent = await bot.request(email)
    bot.prime.fail(task_id, code=HOSTILE_CODE, message=HOSTILE_MESSAGE)
    await bot.relay(envelope(FAILED, task_id))
    reply = await bot.slack.wait_for(lambda: bot.replies(parent["ts"])[0])
    return task_id, reply


async def test_amazons_error_words_are_escaped_in_the_thread(bot: Harness) -> None:
    """A `<!channel>` code and a disguised link in Amazon's message reach the channel as inert, escaped text."""
    _, reply = await failed_thread(bot, "hostile@example.com")
    public = bot.slack.public_text()
    for live in ("<!channel>", "<https://evil.example", "<@U0BOSS>", "bob%40shop.example"):
        assert live not in public
    shown = text_of(reply)
    assert "&lt;!channel&gt;" in shown
    assert "&lt;https://evil.example/login|Click here&gt; &amp; tell &lt;@U0BOSS&gt;" in shown
    assert "b***@shop.example" in shown  # the percent-encoded address is masked like a plain one


async def test_what_a_user_typed_is_escaped_when_echoed_back(bot: Harness) -> None:
    """A mention or link in a bad email or an unknown option comes back as literal text to the typer."""
    bad_email = ack_text(await bot.slash("<!here>|x"))
    assert "&lt;!here&gt;|x" in bad_email and "<!here>" not in bad_email
    bad_option = ack_text(await bot.slash("a@example.com --x<!channel>"))
    assert "--x&lt;!channel&gt;" in bad_option and "<!channel>" not in bad_option


async def test_retention_purge_clears_amazons_stored_error_messages(tmp_path: Path) -> None:
    """After RETENTION_DAYS the failed request keeps Amazon's error code, not its message; the audit never had it."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock, retention_days=30) as bot:
        _, _ = await failed_thread(bot, "purge.words@example.com")
        before = await bot.runtime.store.requests.get(1)
        assert before is not None and before.errors[0].message  # stored, masked, while the case is live
        assert "b***@shop.example" in before.errors[0].message
        clock.advance(31 * DAY)
        assert await bot.runtime.workers.retention.purge() == [1]
        after = await bot.runtime.store.requests.get(1)
        assert after is not None
        assert [(e.code, e.message) for e in after.errors] == [(HOSTILE_CODE, "")]
        audit = json.dumps([e.detail for e in await bot.runtime.store.audit.entries(request_id=1)])
        assert "evil.example" not in audit and "shop.example" not in audit
        stored = b"".join(p.read_bytes() for p in tmp_path.glob("data-requests.db*"))
        assert b"evil.example" not in stored and b"shop.example" not in stored
