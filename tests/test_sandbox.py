"""The built-in Buy with Prime sandbox: its endpoints against the schema, and `serve --sandbox` end to end.

The sandbox is the one model of Amazon's behaviour (the tests' FakePrime subclasses it), so Amazon's rules are
tested here, once, with the clock moving the tasks; test_sandbox_deletion.py does the same for deletions."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fakes import FakeSlack, text_of
from harness import SIGNING_SECRET, Harness, eventually, running_bot
from sandboxes import QUERY, RELAY_KEY, T0, TOKEN, Amazon, classification, served

from bot.runtime import Runtime
from bot.settings import load_settings
from bot.tuning import Tuning
from core import ConfigError
from prime import RETRIEVAL

LINK = re.compile(r"https?://[^\s|>\"]+X-Amz-Signature=[0-9a-f]+")


@pytest.fixture
async def amazon() -> AsyncIterator[Amazon]:
    async with served() as sandbox:
        yield sandbox


# ----------------------------------------------------------------- tokens and the schema


async def test_token_endpoint_issues_a_bearer_token_only_for_client_credentials(amazon: Amazon) -> None:
    """The token endpoint answers the client-credentials grant and refuses any other grant with 400."""
    url = f"{amazon.base}/sandbox/token"
    for refused in ({}, {"grant_type": "password"}, {"grant_type": "authorization_code"}):
        response = await amazon.http.post(url, data=refused)
        assert response.status_code == 400
        assert response.json() == {"error": "unsupported_grant_type"}
    issued = (await amazon.http.post(url, data={"grant_type": "client_credentials"})).json()
    assert issued["token_type"] == "bearer" and issued["expires_in"] == 900 and issued["access_token"]


async def test_graphql_requires_a_bearer_token_the_sandbox_issued(amazon: Amazon) -> None:
    """No token or a made-up one is a 401; the issued one is served."""
    no_auth = await amazon.http.post(f"{amazon.base}/sandbox/graphql", json={"query": QUERY})
    assert no_auth.status_code == 401
    assert (await amazon.graphql(QUERY, {"taskId": "x"}, token="sbx-made-up")).status_code == 401
    assert (await amazon.graphql(QUERY, {"taskId": "x"})).status_code == 200


async def test_invalid_documents_are_refused_with_400_and_the_schema_errors(amazon: Amazon) -> None:
    """Every document is validated against the privacy schema before it runs."""
    for document, complaint in (
        ('query { personalDataRetrievalTask(taskId: "x") { noSuchField } }', "noSuchField"),
        ("query { personalDataRetrievalTask { taskId } }", "taskId"),
        ("mutation { startPersonalDataRetrievalTask(input: {dataSubject: {type: ADMIN}}) { taskId } }", "ADMIN"),
        ("query { personalDataRetrievalTask(taskId: ", "Syntax Error"),
    ):
        response = await amazon.graphql(document)
        assert response.status_code == 400, document
        assert response.json()["errors"] and complaint in response.text
    assert "data" in (await amazon.graphql(QUERY, {"taskId": "sbx-0-c-000000000000"})).json()


# ----------------------------------------------------------------- tasks


async def test_same_client_token_within_8_hours_returns_the_same_task(amazon: Amazon) -> None:
    """A retry with the first try's clientToken finds the first task (another email with it is a ConflictError);
    after 8 hours it starts a new one."""
    first = await amazon.start_task("jane@example.com")
    amazon.now += 8 * 3600 - 1
    assert await amazon.start_task("jane@example.com") == first
    conflict = await amazon.start("someone.else@example.com")
    assert conflict["data"] == {"startPersonalDataRetrievalTask": None}
    assert classification(conflict)["type"] == "ConflictError" and classification(conflict)["errorCode"] == 409
    assert await amazon.start_task("jane@example.com", "d" * 36) != first
    amazon.now += 2
    assert await amazon.start_task("jane@example.com") != first


async def test_task_is_in_progress_until_complete_after_then_completed_with_a_link(amazon: Amazon) -> None:
    """Status follows the clock: IN_PROGRESS with no link, then COMPLETED with one and no errors."""
    task_id = await amazon.start_task("jane@example.com")
    amazon.now += 9.9
    early = (await amazon.task(task_id))["data"]["personalDataRetrievalTask"]
    assert early["status"] == "IN_PROGRESS" and early["dataRetrievalLink"] is None and early["errors"] == []
    assert early["dataSubject"] == {"type": "SHOPPER", "email": "jane@example.com"}
    amazon.now += 0.1
    done = (await amazon.task(task_id))["data"]["personalDataRetrievalTask"]
    assert done["status"] == "COMPLETED" and done["errors"] == [] and LINK.fullmatch(done["dataRetrievalLink"])
    assert done["submissionDate"] == "2027-01-15T08:00:00Z" and done["lastUpdatedDate"] == "2027-01-15T08:00:10Z"


@pytest.mark.parametrize(
    ("email", "code"),
    [("notfound.jo@example.com", "DATA_SUBJECT_NOT_FOUND"), ("OpenOrders@example.com", "ORDERS_NOT_CLOSED")],
)
async def test_documented_emails_fail_with_amazons_error_shape(amazon: Amazon, email: str, code: str) -> None:
    """`notfound…` and `openorders…` addresses end FAILED with [{code, message}] and no link."""
    task_id = await amazon.start_task(email)
    assert (await amazon.task(task_id))["data"]["personalDataRetrievalTask"]["status"] == "IN_PROGRESS"
    amazon.now += 10
    failed = (await amazon.task(task_id))["data"]["personalDataRetrievalTask"]
    assert failed["status"] == "FAILED" and failed["dataRetrievalLink"] is None
    assert [e["code"] for e in failed["errors"]] == [code]
    assert all(isinstance(e["message"], str) and e["message"] for e in failed["errors"])


@pytest.mark.parametrize(
    ("email", "client_token", "field"),
    [
        ("not-an-email", TOKEN, "dataSubject.email"),
        ("jane@example", TOKEN, "dataSubject.email"),
        ("jane@example.com\n", TOKEN, "dataSubject.email"),  # Amazon's pattern is matched whole
        ("jane@example.com", "0123456789", "clientToken.token"),
        ("jane@example.com", "x" * 65, "clientToken.token"),
    ],
)
async def test_bad_email_or_client_token_is_a_validation_error(
    amazon: Amazon, email: str, client_token: str, field: str
) -> None:
    """Input Amazon would refuse comes back as errors[] classified ValidationError (400), with data null."""
    body = await amazon.start(email, client_token)
    assert body["data"] == {"startPersonalDataRetrievalTask": None}
    assert field in body["errors"][0]["message"]
    assert classification(body) == {
        "type": "ValidationError",
        "code": "UnspecifiedError",
        "errorType": "ValidationException",
        "errorCode": 400,
    }


async def test_unknown_task_is_a_resource_not_found_error(amazon: Amazon) -> None:
    """A task id the sandbox never issued (or an issued one plus a newline) is ResourceNotFoundError (404)."""
    issued = await amazon.start_task("jane@example.com")
    for task_id in ("8c1f7a52-3d1e-4c55-9a0e-5b9f2f0d4e11", issued + "\n"):
        body = await amazon.task(task_id)
        assert body["data"] == {"personalDataRetrievalTask": None}
        assert classification(body)["type"] == "ResourceNotFoundError"
        assert classification(body)["errorCode"] == 404


# ----------------------------------------------------------------- links


async def test_each_query_issues_a_new_link_that_downloads_a_valid_zip(amazon: Amazon) -> None:
    """Every query of a completed task answers a different link; a fresh one serves data_retrieval.zip."""
    task_id = await amazon.start_task("jane@example.com")
    amazon.now += 10
    first = await amazon.link(task_id)
    amazon.now += 1
    second = await amazon.link(task_id)
    assert first != second
    assert second.startswith(f"{amazon.base}/sandbox/download/{task_id}/data_retrieval.zip?")
    download = await amazon.http.get(second)
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    assert archive.testzip() is None
    assert set(archive.namelist()) == {"README.txt", "shopper_profile.json", "orders.csv"}


async def test_link_expires_after_60_seconds_and_a_tampered_one_is_refused(amazon: Amazon) -> None:
    """A link works for its 60 seconds, then answers 403; a changed signature is a 403 at once."""
    task_id = await amazon.start_task("jane@example.com")
    amazon.now += 10
    link = await amazon.link(task_id)
    flip = {"0": "1"}  # one hex digit changed, whichever it was
    tampered = link[:-1] + flip.get(link[-1], "0")
    other_task = task_id[:-1] + flip.get(task_id[-1], "0")
    assert (await amazon.http.get(tampered)).status_code == 403
    assert (await amazon.http.get(link.replace(f"/{task_id}/", f"/{other_task}/"))).status_code == 403
    amazon.now += 60
    assert (await amazon.http.get(link)).status_code == 200
    amazon.now += 1
    expired = await amazon.http.get(link)
    assert expired.status_code == 403 and "expired" in expired.text


# ----------------------------------------------------------------- events


async def test_task_end_is_posted_to_the_relay_with_the_api_key_as_eventbridge_would() -> None:
    """With complete_after=0 each task's event reaches the relay at once: envelope, type and x-api-key."""
    async with served(complete_after=0) as amazon:
        done = await amazon.start_task("jane@example.com")
        failed = await amazon.start_task("notfound@example.com", "e" * 40)
        await amazon.relay.wait_for(2)
    by_task = {body["resources"][0].rsplit("/", 1)[1]: (headers, body) for headers, body in amazon.relay.requests}
    assert set(by_task) == {done, failed}
    for headers, body in by_task.values():
        assert headers["x-api-key"] == RELAY_KEY
        assert body["version"] == "0" and body["id"] and body["source"].startswith("aws.partner/buywithprime/")
        assert body["resources"][0].startswith("businessProduct/")
    assert by_task[done][1]["detail-type"] == "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"
    assert by_task[failed][1]["detail-type"] == "PERSONAL_DATA_RETRIEVAL_TASK_FAILED"


# ----------------------------------------------------------------- serve --sandbox


def test_sandbox_settings_need_only_the_slack_token_and_signing_secret() -> None:
    """`serve --sandbox` loads with two Slack settings; without --sandbox the BWP credentials are required."""
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "secret"}
    settings = load_settings(env, sandbox=True)
    assert settings.sandbox and settings.sandbox_complete_after == 20.0 and settings.public_url is None
    assert settings.bwp_client_id == settings.bwp_client_secret == settings.bwp_target_id == ""
    with pytest.raises(ConfigError, match="BWP_CLIENT_ID"):
        load_settings(env)


@asynccontextmanager
async def sandbox_bot(tmp_path: Path) -> AsyncIterator[Harness]:
    """`serve --sandbox` as an operator starts it: Slack settings only (plus where Slack is), real sandbox."""
    async with FakeSlack() as slack:
        env = {
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "DATABASE_PATH": str(tmp_path / "data-requests.db"),
            "PORT": "0",
            "SANDBOX_COMPLETE_AFTER": "0.2",
        }
        settings = load_settings(env, sandbox=True)
        assert settings.relay_api_key is None and not settings.bwp_client_id
        runtime = await Runtime.start(settings, host="127.0.0.1", tuning=Tuning.fast())
        async with httpx.AsyncClient(timeout=10) as http:
            try:
                yield Harness(slack, None, runtime, http, settings)  # type: ignore[arg-type]  # no FakePrime here
            finally:
                await runtime.stop()
        assert not slack.invalid_blocks, slack.invalid_blocks


async def has_relayed(bot: Harness, event: tuple[str, str | None]) -> bool:
    """Whether the bot's inbox (read from its database file) holds exactly this one event; None: any task."""
    with sqlite3.connect(f"file:{bot.settings.database_path}?mode=ro", uri=True) as db:
        rows = list(db.execute("SELECT event_type, task_id FROM inbox"))
    return len(rows) == 1 and rows[0][0] == event[0] and event[1] in (None, rows[0][1])


async def test_serve_sandbox_runs_the_whole_flow_to_a_downloaded_zip(tmp_path: Path) -> None:
    """Signed command, sandbox completes, event reaches the relay, Download reply, the shopper's identity recorded
    as verified (required by default), click, link downloads the zip."""
    async with sandbox_bot(tmp_path) as bot:
        assert bot.runtime.settings.relay_api_key  # the bot made its own relay key
        assert (await bot.slash("jane.doe@example.com")).status_code == 200
        parent = await bot.slack.wait_for(lambda: bot.parents()[0])
        assert "j***@example.com" in text_of(parent) and "jane.doe" not in bot.slack.public_text()
        reply = await bot.download_reply(parent)
        task_id = re.findall(r"sbx-[0-9a-f]+-c-[0-9a-f]{12}", text_of(reply))[0]
        await eventually(lambda: has_relayed(bot, ("PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED", task_id)))
        assert bot.settings.verification_required  # the default: Download waits for the shopper's identity
        assert (await bot.slash(f"verify {task_id} order")).status_code == 200
        await bot.slack.wait_for(lambda: [m for m in bot.slack.ephemerals_to("U0ALICE") if "Recorded" in text_of(m)])

        assert (await bot.click(reply)).status_code == 200
        shown = await bot.slack.wait_for(
            lambda: next((m for m in bot.slack.ephemerals_to("U0ALICE") if LINK.search(text_of(m))), None)
        )
        link = LINK.search(text_of(shown))
        assert link is not None and f"/sandbox/download/{task_id}/" in link.group()
        assert "X-Amz-Signature" not in bot.slack.public_text()
        download = await bot.http.get(link.group())
        assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
        assert "README.txt" in zipfile.ZipFile(io.BytesIO(download.content)).namelist()


async def test_serve_sandbox_shows_data_subject_not_found_for_a_notfound_address(tmp_path: Path) -> None:
    """A `notfound…` address ends in a thread reply naming DATA_SUBJECT_NOT_FOUND, and its FAILED event is relayed."""
    async with sandbox_bot(tmp_path) as bot:
        await bot.slash("notfound.shopper@example.com", user="U0BOB")
        parent = await bot.slack.wait_for(lambda: bot.parents()[0])
        failure = await bot.slack.wait_for(lambda: bot.replies(parent["ts"])[0])
        assert "DATA_SUBJECT_NOT_FOUND" in text_of(failure)
        await eventually(lambda: has_relayed(bot, ("PERSONAL_DATA_RETRIEVAL_TASK_FAILED", None)))


async def test_sandbox_rewires_buy_with_prime_to_itself_and_links_use_public_url(tmp_path: Path) -> None:
    """Runtime points the client at /sandbox/* on its own port, and PUBLIC_URL is the links' host."""
    async with running_bot(
        tmp_path, sandbox=True, sandbox_complete_after=0, public_url="https://bot.example.com"
    ) as bot:
        settings, local = bot.runtime.settings, f"http://127.0.0.1:{bot.runtime.port}"
        assert (settings.bwp_api_url, settings.bwp_token_url) == (f"{local}/sandbox/graphql", f"{local}/sandbox/token")
        prime = bot.runtime.clients.prime
        task_id = await prime.start_task(RETRIEVAL, email="jane@example.com", client_token=TOKEN)
        state = await prime.task(RETRIEVAL, task_id)
        assert state.status == "COMPLETED"
        assert (state.link or "").startswith(f"https://bot.example.com/sandbox/download/{task_id}/")
        assert not bot.prime.starts()  # the fake Amazon heard nothing


# ----------------------------------------------------------------- edges (each was a bug, fixed in c3f8623)


async def test_sub_second_times_count_for_task_end_link_expiry_and_new_links() -> None:
    """Started at x.9 s, a task runs its full complete_after; a link lives its full 60 s; same-second links differ."""
    async with served(start=T0 + 0.9) as amazon:
        task_id = await amazon.start_task("jane@example.com")
        amazon.now = T0 + 10.0  # 9.1 s after the start
        assert (await amazon.task(task_id))["data"]["personalDataRetrievalTask"]["status"] == "IN_PROGRESS"
        amazon.now = T0 + 10.9
        link = await amazon.link(task_id)
        assert link != await amazon.link(task_id)
        amazon.now += 59.6
        assert (await amazon.http.get(link)).status_code == 200


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"query": QUERY, "variables": "x"}).encode(),
        json.dumps({"query": QUERY, "variables": [1]}).encode(),
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["variables-a-string", "variables-a-list", "deeply-nested-json"],
)
async def test_malformed_graphql_bodies_are_a_400_not_a_500(amazon: Amazon, content: bytes) -> None:
    """A body whose variables are not an object, or JSON nested past Python's recursion limit, is a 400."""
    headers = {"authorization": f"Bearer {amazon.token}", "x-api-version": "2024-11-01"}
    response = await amazon.http.post(f"{amazon.base}/sandbox/graphql", content=content, headers=headers)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("date", "signature"), [("1800000010", "é"), ("²", "00")], ids=["non-ascii-signature", "superscript-date"]
)
async def test_odd_download_query_values_are_a_403_not_a_500(amazon: Amazon, date: str, signature: str) -> None:
    """A link with a non-ASCII signature, or a date of Unicode digits, is refused like any bad signature."""
    task_id = await amazon.start_task("jane@example.com")
    url = f"{amazon.base}/sandbox/download/{task_id}/data_retrieval.zip"
    response = await amazon.http.get(url, params={"X-Amz-Date": date, "X-Amz-Signature": signature})
    assert response.status_code == 403


async def test_the_docs_proxy_lists_forward_the_path_of_the_sandboxs_download_links(tmp_path: Path) -> None:
    """Behind a proxy the sandbox's links 404 unless their path is forwarded: both lists of paths in
    docs/operating.md (install step 5 and "Proxy paths") name the path of a link the sandbox really gives."""
    async with running_bot(
        tmp_path, sandbox=True, sandbox_complete_after=0, public_url="https://bot.example.com"
    ) as bot:
        prime = bot.runtime.clients.prime
        task_id = await prime.start_task(RETRIEVAL, email="jane@example.com", client_token=TOKEN)
        link = (await prime.task(RETRIEVAL, task_id)).link or ""
    path = httpx.URL(link).path
    forwarded = "GET " + path[: path.index(task_id)]
    operating = (Path(__file__).parent.parent / "docs" / "operating.md").read_text()
    install = operating.split("5. **Put it behind HTTPS.**", 1)[1].split("\n6. ", 1)[0]
    proxy_paths = operating.split("### Proxy paths and bind address", 1)[1].split("\n## ", 1)[0]
    assert forwarded == "GET /sandbox/download/"
    assert f"`{forwarded}`" in install and f"`{forwarded}`" in proxy_paths.replace("\n", " ")
