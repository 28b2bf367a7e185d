"""The docs hold together and say what the bot does.

README.md and docs/*.md are read by people who copy what they show: every link between the pages lands on
a heading that exists, every alert of the monitoring table has its troubleshooting entry, the README's
test command is the one CI runs, and every ``data-request-bot …`` or ``python -m bot …`` command shown in
a code block is run here (against the loopback fakes and a temporary database) or, for a command that
serves until it is stopped, accepted by the CLI's own parser and run by the test named beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from harness import running_bot
from processes import Fakes, clean_env, run_bot

from bot.cli import main
from bot.settings import load_new_key, load_settings, load_storage_settings
from core import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Run here, each to exit 0: against the loopback fakes, on a temporary database holding a case. A path the
# docs name (``/backups/``) is taken inside the test's folder.
RUN_HERE = frozenset(
    {"demo", "check", "audit", "evidence", "backup", "purge", "rotate-key", "records", "report", "--version"}
)
# Serve until stopped: accepted by the parser here, run and stopped by the tests named.
PARSED_HERE = {
    "serve": "tests/test_cli.py (python -m bot serve, SIGTERM) and tests/test_sandbox.py (--sandbox)",
    "playground": "tests/test_playground.py (python -m bot playground, driven in a browser)",
}
# Shown failing on purpose, with the exit code they show: run here, each to exit with it.
SHOWN_FAILING = {("report", "--from", "2025-01-01"): 2}
# The service of compose.yaml whose image's entrypoint is the bot's CLI.
COMPOSE_SERVICE = "data-request-bot"
# ``docker compose -f FILE`` for the compose files beside compose.yaml: their services that run the image built here.
COMPOSE_FILE_OPTIONS = {"-f", "--file"}
# ``docker compose run`` options that take a value (the service name follows them).
COMPOSE_RUN_VALUES = {"-e", "--env", "-v", "--volume", "-w", "--workdir", "-u", "--user", "--name", "-p", "--publish"}

FENCE = re.compile(r"^( *)```([^\n]*)\n(.*?)^ *```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)
SUBSHELL = re.compile(r"\$\([^)]*\)")  # NEW_ENCRYPTION_KEY=$(cat new-encryption-key): a value, not a command
SEPARATORS = {";", "&&", "||", "|", "&"}
REDIRECTS = {">", ">>", "<", "2>"}
CRON_FIELDS = 5


def prose(text: str) -> str:
    """The page without its code (fenced blocks and inline code), where links are links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(heading) for heading in HEADING.findall(FENCE.sub("", page.read_text()))}


def shell_lines(text: str) -> Iterator[str]:
    """Each line of the shell and cron blocks, continuations joined, a shown prompt (``$ ``) dropped. In a block
    that shows prompts, only the lines after one are commands: the others are what they print."""
    for indent, info, block in FENCE.findall(text):
        if info.strip() not in ("", "sh", "bash", "console", "cron"):
            continue  # json, mermaid: not commands
        lines = [raw.removeprefix(indent).strip() for raw in block.replace("\\\n", " ").splitlines()]
        prompted = any(line.startswith("$ ") for line in lines)
        for line in lines:
            if prompted and not line.startswith("$ "):
                continue
            line = line.removeprefix("$ ")
            if info.strip() == "cron":
                line = " ".join(line.split()[CRON_FIELDS:])
            yield line


def simple_commands(line: str) -> Iterator[list[str]]:
    """The line's simple commands as words: split at ``&&``, ``|``, ``;``; redirections and comments left out."""
    lexer = shlex.shlex(SUBSHELL.sub("VALUE", line), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words: list[str] = []
    skip_next = False
    for word in lexer:
        if skip_next:
            skip_next = False
        elif word in SEPARATORS:
            yield words
            words = []
        elif word in REDIRECTS:
            skip_next = True  # its file name
        else:
            words.append(word)
    yield words


def bot_arguments(words: list[str]) -> list[str] | None:
    """The arguments given to the bot's CLI, if these words run it (``data-request-bot``, ``python -m bot``,
    also after ``NAME=value`` settings, inside ``docker exec CONTAINER`` or as ``docker compose run … SERVICE``);
    None if they run something else."""
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        words = words[1:]
    if words[:2] == ["docker", "exec"]:
        words = words[3:]
    elif words[:2] == ["docker", "compose"]:
        words = words[2:]
        file = "compose.yaml"
        if words[:1] and words[0] in COMPOSE_FILE_OPTIONS:
            file, words = words[1], words[2:]
        return compose_run_arguments(words[1:], services=image_services(file)) if words[:1] == ["run"] else None
    program = Path(words[0]).name if words else ""
    if program == "data-request-bot":
        return words[1:]
    if program.startswith("python") and words[1:3] == ["-m", "bot"]:
        return words[3:]
    return None


def image_services(file: str) -> frozenset[str]:
    """The services of a compose file that run the image built from this folder (its entrypoint is the bot's CLI)."""
    services = yaml.safe_load((ROOT / file).read_text())["services"]
    return frozenset(name for name, service in services.items() if service.get("build") == ".")


def compose_run_arguments(
    words: list[str], *, services: frozenset[str] = frozenset({COMPOSE_SERVICE})
) -> list[str] | None:
    """The words after ``docker compose run``: its options, the service, then the arguments the image's entrypoint
    (the bot's CLI) is given; None for another service or an ``--entrypoint`` that is not the bot's."""
    while words and words[0].startswith("-"):
        option = words.pop(0)
        if option == "--entrypoint":
            return None
        if option in COMPOSE_RUN_VALUES:
            words = words[1:]
    if not words or words[0] not in services:
        return None
    return words[1:]


def documented_commands() -> list[tuple[str, list[str]]]:
    """(page, arguments) for every run of the bot's CLI shown in a code block of the docs, in page order."""
    found = []
    for page in PAGES:
        for line in shell_lines(page.read_text()):
            for words in simple_commands(line):
                arguments = bot_arguments(words)
                if arguments is not None:
                    found.append((page.relative_to(ROOT).as_posix(), arguments))
    return found


COMMANDS = documented_commands()


def command_id(command: tuple[str, list[str]]) -> str:
    return f"{command[0]}: {shlex.join(command[1])}"


# ----------------------------------------------------------------- the pages hold together


def test_every_link_between_the_pages_lands_on_a_file_and_heading_that_exist() -> None:
    """A relative link names a file that exists, and its ``#anchor`` a heading in it."""
    broken = []
    for page in PAGES:
        for target in LINK.findall(prose(page.read_text())):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and (file.suffix != ".md" or anchor not in anchors(file)):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


def test_the_readme_links_every_docs_page() -> None:
    """The README is the way in: each page in docs/ is linked from it."""
    linked = {target.partition("#")[0] for target in LINK.findall(prose((ROOT / "README.md").read_text()))}
    assert {f"docs/{page.name}" for page in PAGES[1:]} <= linked


def test_each_alert_links_to_its_own_troubleshooting_entry_and_each_entry_has_its_alert() -> None:
    """Every row of the Monitoring table links to an entry under "Alerts" in troubleshooting.md, one each."""
    operating = (ROOT / "docs" / "operating.md").read_text()
    table = operating.split("### Monitoring", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "data_request_bot_" in line]
    linked = [re.match(r"\| \[[^\n]*\]\(troubleshooting\.md#([\w-]+)\) \| ", row) for row in rows]
    assert rows and all(linked), [row for row, link in zip(rows, linked, strict=True) if not link]
    troubleshooting = (ROOT / "docs" / "troubleshooting.md").read_text()
    alerts_section = troubleshooting.split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    entries = [slug(heading) for heading in re.findall(r"^### (.+)$", alerts_section, re.MULTILINE)]
    assert sorted(link.group(1) for link in linked if link) == sorted(entries)


class ReadBack(dict[str, str]):
    """An environment that notes each name the settings read from it."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        self.read.add(name)
        return super().get(name, default)

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return super().__getitem__(name)


def test_the_settings_table_lists_each_setting_the_bot_reads_and_no_other(tmp_path: Path) -> None:
    """Each name the settings read from the environment (``serve``'s, the storage commands', ``rotate-key``'s
    new key) is a row of operating.md's Settings table, and each row is one the bot reads."""
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    env = ReadBack({"DATABASE_PATH": str(tmp_path / "bot.db"), "ENCRYPTION_KEY": key})
    for load in (load_settings, load_storage_settings, load_new_key):
        with contextlib.suppress(ConfigError):
            load(env)
    operating = (ROOT / "docs" / "operating.md").read_text()
    table = operating.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", table, re.MULTILINE))
    assert "IDENTITY_VERIFICATION" in env.read
    assert env.read == rows, (sorted(env.read - rows), sorted(rows - env.read))


def test_the_readmes_two_commands_install_and_run_the_demo_and_the_tests_and_ci_runs_the_same() -> None:
    """A newcomer's two commands, exactly; ``.ci/run`` runs the second, character for character."""
    readme = (ROOT / "README.md").read_text()
    demo = "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/data-request-bot demo"
    tests = "python3 -m venv .venv && .venv/bin/pip install '.[test]' && .venv/bin/python -m pytest"
    blocks = [block.strip() for _, _, block in FENCE.findall(readme)]
    assert demo in blocks and tests in blocks
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()


# ----------------------------------------------------------------- every command shown is run or parsed


def test_the_compose_service_the_docs_run_is_the_images_entrypoint() -> None:
    """``docker compose run … data-request-bot ARGS`` gives ARGS to the bot's CLI: the service exists and keeps
    the image's entrypoint, which is the bot's. So do compose.postgres.yaml's two copies
    (``docker compose -f compose.postgres.yaml run … bot-a ARGS``)."""
    assert image_services("compose.yaml") == {COMPOSE_SERVICE}
    assert image_services("compose.postgres.yaml") == {"bot-a", "bot-b"}
    for file in ("compose.yaml", "compose.postgres.yaml"):
        services = yaml.safe_load((ROOT / file).read_text())["services"]
        assert all("entrypoint" not in services[name] for name in image_services(file)), file
    words = ["docker", "compose", "-f", "compose.postgres.yaml", "run", "--rm", "bot-b", "check"]
    assert bot_arguments(words) == ["check"]
    assert bot_arguments(["docker", "compose", "-f", "compose.postgres.yaml", "exec", "postgres", "pg_dump"]) is None
    assert 'ENTRYPOINT ["data-request-bot"]' in (ROOT / "Dockerfile").read_text().splitlines()
    assert compose_run_arguments(["--rm", "-T", "-e", "A=b", COMPOSE_SERVICE, "audit"]) == ["audit"]
    assert compose_run_arguments(["--rm", "--entrypoint", "cat", COMPOSE_SERVICE, "/data/x"]) is None


def test_the_docs_show_commands_and_each_is_run_here_or_parsed_and_run_elsewhere() -> None:
    """A command the docs show that neither list names fails here: say how it is tested before showing it."""
    shown = {args[0] for _, args in COMMANDS if args}
    assert {"demo", "check", "backup", "audit", "serve", "rotate-key", "records", "report", "playground"} <= shown
    unplaced = [command_id(c) for c in COMMANDS if not c[1] or (c[1][0] not in RUN_HERE | PARSED_HERE.keys())]
    assert not unplaced, unplaced


class Parsed(Exception):
    """Raised in place of running the command: what the parser made of it."""


@pytest.mark.parametrize("command", COMMANDS, ids=command_id)
def test_the_cli_accepts_each_command_the_docs_show(
    command: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's own parser takes the arguments as shown (a misspelt option or value fails here); the
    command is stopped right after parsing, so nothing runs. ``--version`` is answered by the parser itself,
    which ends with exit 0."""
    parse = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise Parsed(parse(self, *args, **kwargs))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    with pytest.raises((Parsed, SystemExit)) as stopped:
        main(command[1])
    if stopped.type is SystemExit:
        assert command[1] == ["--version"] and stopped.value.code == 0, stopped.value


def in_folder(arguments: list[str], folder: Path) -> list[str]:
    """The arguments with each absolute path the docs show taken inside ``folder`` (a trailing / kept)."""
    return [
        str(folder / a.lstrip("/")) + ("/" if a.endswith("/") else "") if a.startswith("/") else a for a in arguments
    ]


async def test_each_command_the_docs_show_that_runs_offline_exits_0(fakes: Fakes, tmp_path: Path) -> None:
    """Run as shown, as a process, against the fakes and a database holding a case: each exits 0 (one shown
    failing on purpose exits with the code in ``SHOWN_FAILING``). ``rotate-key`` runs last (it changes the key
    the others open the database with)."""
    runs = sorted((args for _, args in COMMANDS if args and args[0] in RUN_HERE), key=lambda a: a[0] == "rotate-key")
    # The demo waits on the sandbox's clock and needs no setting: it runs beside the others.
    demos = {
        shlex.join(args): asyncio.create_task(run_bot(*args, env=clean_env(), cwd=tmp_path))
        for args in runs
        if args[0] == "demo"
    }
    async with running_bot(tmp_path / "bot") as bot:
        await bot.request("jane@example.com")
        database, key = bot.settings.database_path, bot.settings.encryption_key
    new_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    env = fakes.env(
        tmp_path,
        DATABASE_PATH=str(database),
        ENCRYPTION_KEY=base64.urlsafe_b64encode(key).decode(),
        NEW_ENCRYPTION_KEY=new_key,
    )
    failed = []
    for args in (args for args in runs if args[0] != "demo"):
        done = await run_bot(*in_folder(args, tmp_path), env=env, cwd=tmp_path)
        if done.returncode != SHOWN_FAILING.get(tuple(args), 0):
            failed.append(f"{shlex.join(args)}: exit {done.returncode}: {done.stderr}")
    for shown, task in demos.items():
        done = await task
        if done.returncode != 0:
            failed.append(f"{shown}: exit {done.returncode}: {done.stderr}")
    assert not failed, failed
    assert len(runs) >= 6, runs  # demo, check --sandbox, three audits, backup, rotate-key at least
