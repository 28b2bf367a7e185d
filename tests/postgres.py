"""A real PostgreSQL server for the tests, and a fresh empty database on it for each test that asks.

One server per test session: the one ``TEST_DATABASE_URL`` names (a ``postgresql://`` URL whose user may create
and drop databases), or else one started here from Debian's binaries (``/usr/lib/postgresql/<version>/bin``, the
newest version) in a temporary folder, with trust authentication on 127.0.0.1 only, and its unix socket in that
folder. It runs without durability (fsync, full-page writes and synchronous commit off): a test's database is
thrown away, and a crash loses nothing a test needs. PostgreSQL refuses to run as root, so under root it runs as
the ``postgres`` account Debian's package makes.

Each test's database is made from ``template0`` (so it is empty whatever the server's ``template1`` holds) and
dropped WITH (FORCE) after the test, closing whatever connections the test left open.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from processes import free_port
from psycopg import sql

__all__ = ["ENV_URL", "MISSING", "Server", "binaries", "server"]

ENV_URL = "TEST_DATABASE_URL"  # a server to use instead of starting one (a managed one, or one kept running)
DEBIAN_ROOT = Path("/usr/lib/postgresql")
ACCOUNT = "postgres"  # the server's own account under root (Debian's postgresql package makes it)
MISSING = (
    "PostgreSQL's server binaries are missing (no /usr/lib/postgresql/*/bin/initdb): "
    f"install Debian's postgresql (apt-get install postgresql), or set {ENV_URL} to a server's URL"
)
# For speed: a test's data is thrown away, so nothing needs to survive a crash.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",  # each test's store opens a pool; a failing test may leave one open until its drop
}
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections


@dataclass
class Server:
    """A PostgreSQL server the session uses: ``url`` reaches its maintenance database as a user who may create
    databases; ``database()`` makes a fresh one for a test."""

    url: str
    names: Iterator[int] = field(default_factory=itertools.count)

    def url_of(self, name: str) -> str:
        """The URL of the database ``name`` on this server, as the same user."""
        return urlunsplit(urlsplit(self.url)._replace(path=f"/{name}"))

    def exists(self, name: str) -> bool:
        with psycopg.connect(self.url, autocommit=True) as admin:
            return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """Create an empty database, give its URL, and drop it afterwards even if connections to it are open.

        The process id in its name keeps two test runs apart on one shared ``TEST_DATABASE_URL`` server.
        """
        name = f"t_{os.getpid()}_{next(self.names)}"
        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name)))
        try:
            yield self.url_of(name)
        finally:
            with psycopg.connect(self.url, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def binaries(root: Path = DEBIAN_ROOT) -> Path:
    """The ``bin`` folder of the newest PostgreSQL under ``root`` (Debian keeps one folder per major version)."""

    def version(initdb: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in initdb.parent.parent.name.split(".") if part.isdigit())

    found = sorted(root.glob("*/bin/initdb"), key=version)
    if not found:
        pytest.fail(MISSING, pytrace=False)
    return found[-1].parent


@contextlib.contextmanager
def server(*, env: Mapping[str, str] = os.environ, root: Path = DEBIAN_ROOT) -> Iterator[Server]:
    """The server ``TEST_DATABASE_URL`` names, or one started here for as long as the block runs."""
    if env.get(ENV_URL):
        yield Server(env[ENV_URL])
        return
    with started(binaries(root)) as url:
        yield Server(url)


@contextlib.contextmanager
def started(bin_dir: Path) -> Iterator[str]:
    """Initialise a cluster in a temporary folder, start it on a free loopback port, and stop it (immediately:
    its data is thrown away) and remove the folder at the end."""
    folder = Path(tempfile.mkdtemp(prefix="postgres-test-"))
    run_as = server_account(folder)
    data, log = folder / "data", folder / "server.log"
    port = free_port()
    options = " ".join(shlex.quote(option) for option in ["-p", str(port), "-k", str(folder), *settings_options()])
    try:
        run(
            run_as,
            bin_dir / "initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "-N",
            cwd=folder,
        )
        run(run_as, bin_dir / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", str(START_TIMEOUT), "start",
            cwd=folder, log=log)  # fmt: skip
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            run(run_as, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", cwd=folder, log=log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def settings_options() -> Iterator[str]:
    for name, value in SETTINGS.items():
        yield from ("-c", f"{name}={value}")


def server_account(folder: Path) -> list[str]:
    """The command prefix that runs the server's programs: none for an ordinary user; under root (which the
    server refuses), ``runuser`` to the ``postgres`` account, which is given ``folder``."""
    if os.geteuid() != 0:
        return []
    try:
        account = pwd.getpwnam(ACCOUNT)
    except KeyError:
        pytest.fail(
            f"running as root, and there is no {ACCOUNT} account to run PostgreSQL as: {MISSING}", pytrace=False
        )
    os.chown(folder, account.pw_uid, account.pw_gid)
    return ["runuser", "-u", ACCOUNT, "--"]


def run(run_as: list[str], *command: str | Path, cwd: Path, log: Path | None = None) -> None:
    """Run one of the server's programs to its end from the server's folder; fail the session in words if it
    fails (with the server's log, which says why it did not start)."""
    words = [*run_as, *map(str, command)]
    done = subprocess.run(words, capture_output=True, text=True, timeout=START_TIMEOUT + 30, cwd=cwd)
    if done.returncode != 0:
        said = done.stdout + done.stderr + (log.read_text() if log is not None and log.exists() else "")
        pytest.fail(f"{shlex.join(words)} exited {done.returncode}:\n{said}", pytrace=False)
