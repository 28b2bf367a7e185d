"""Shared fixtures: a running bot against loopback fakes of Slack and Buy with Prime; a PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import postgres
import pytest
from fakes import FakePrime, FakeSlack
from harness import Harness, running_bot
from processes import Fakes


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshots",
        metavar="DIR",
        default=None,
        help="save the playground's screenshots for the docs (e.g. docs/images) while its browser tests run",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test module that sets ``ON_BOTH_BACKENDS = True`` runs each of its ``bot`` tests on SQLite, then on
    PostgreSQL."""
    if "bot_backend" in metafunc.fixturenames and getattr(metafunc.module, "ON_BOTH_BACKENDS", False):
        metafunc.parametrize("bot_backend", ["sqlite", "postgresql"])


@pytest.fixture
def bot_backend() -> str:
    """The backend a ``bot`` keeps its state in (SQLite unless the module runs on both)."""
    return "sqlite"


@pytest.fixture
async def bot(tmp_path: Path, bot_backend: str, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    on_postgres = {"database_url": request.getfixturevalue("postgres_url")} if bot_backend == "postgresql" else {}
    async with running_bot(tmp_path, **on_postgres) as harness:
        yield harness


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    """Slack and Buy with Prime on loopback for a bot run as its own process; every GraphQL document it sent
    must have been valid."""
    async with FakeSlack() as slack, FakePrime() as prime:
        yield Fakes(slack, prime)
        assert not prime.invalid, prime.invalid


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.Server]:
    """One PostgreSQL server for the session: ``TEST_DATABASE_URL``'s, or one started from Debian's binaries."""
    with postgres.server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: postgres.Server) -> Iterator[str]:
    """A fresh empty database for this test alone (``postgresql://…/t_…``), dropped after it."""
    with postgres_server.database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_at(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a store test keeps its database, once on each backend: a SQLite file, then a fresh PostgreSQL
    database (so the store's suite runs on both)."""
    if request.param == "sqlite":
        return tmp_path / "requests.db"
    url: str = request.getfixturevalue("postgres_url")
    return url
