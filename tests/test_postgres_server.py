"""The tests' PostgreSQL: a server that answers, and a database of its own, empty, for each test that asks,
gone once the test is over."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from postgres import ENV_URL, MISSING, Server, binaries, server


def name_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def tables(url: str) -> list[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        return [row[0] for row in rows]


@pytest.fixture
def dropped_after(postgres_server: Server) -> Iterator[list[str]]:
    """Set up before ``postgres_url``, so torn down after it: each URL the test puts in the list names a database
    that no longer exists once the test's own fixtures are gone."""
    urls: list[str] = []
    yield urls
    assert urls
    for url in urls:
        assert not postgres_server.exists(name_of(url)), url


def test_the_database_answers_is_empty_and_is_dropped_after_the_test(
    dropped_after: list[str], postgres_url: str
) -> None:
    """The URL reaches the database it names, over TCP, on a server new enough for DROP DATABASE … WITH (FORCE);
    it holds no table; a connection the test leaves open does not keep it from being dropped."""
    dropped_after.append(postgres_url)
    assert urlsplit(postgres_url).scheme == "postgresql"
    left_open = psycopg.connect(postgres_url)
    row = left_open.execute("SELECT current_database(), current_setting('server_version_num')::int").fetchone()
    assert row is not None and row[0] == name_of(postgres_url) and row[1] >= 130000
    assert tables(postgres_url) == []
    left_open.execute("CREATE TABLE kept (n int)")
    left_open.commit()
    assert tables(postgres_url) == ["kept"]


def test_two_databases_are_two_empty_databases(postgres_server: Server) -> None:
    """What one test writes, another never sees: each database is made new from template0."""
    with postgres_server.database() as first, postgres_server.database() as second:
        assert name_of(first) != name_of(second)
        with psycopg.connect(first) as connection:
            connection.execute("CREATE TABLE written (n int)")
        assert tables(first) == ["written"] and tables(second) == []
    assert not postgres_server.exists(name_of(first)) and not postgres_server.exists(name_of(second))


def test_test_database_url_names_a_server_to_use_instead_of_starting_one(postgres_server: Server) -> None:
    """With TEST_DATABASE_URL set, no server is started (there are no binaries to start one with): the databases
    are made on the server it names."""
    with server(env={ENV_URL: postgres_server.url}, root=Path("/nonexistent")) as given:
        assert given.url == postgres_server.url
        with given.database() as url:
            assert urlsplit(url).netloc == urlsplit(postgres_server.url).netloc and postgres_server.exists(name_of(url))


def test_without_the_binaries_the_fixture_fails_in_one_line_naming_the_package(tmp_path: Path) -> None:
    """No silent skip: CI installs the package, and a developer is told which one."""
    with pytest.raises(pytest.fail.Exception) as failed:
        binaries(tmp_path)
    assert str(failed.value) == MISSING and "\n" not in MISSING and "apt-get install postgresql" in MISSING


def test_the_newest_version_is_the_one_started(tmp_path: Path) -> None:
    """Debian keeps one folder per major version; 16 is newer than 9.6 (numbers, not text)."""
    for version in ("9.6", "16", "15"):
        (tmp_path / version / "bin").mkdir(parents=True)
        (tmp_path / version / "bin" / "initdb").touch()
    assert binaries(tmp_path) == tmp_path / "16" / "bin"
