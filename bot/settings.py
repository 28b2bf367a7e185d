"""Settings, read once from the environment at start (each name is in the "Settings" table of docs/operating.md).

Nothing else in the project reads ``os.environ``: the rest receives what it
needs from this frozen value, which keeps tests free to build one by hand.
"""

from __future__ import annotations

import base64
import binascii
import re
import sqlite3
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core import ConfigError
from prime import DEFAULT_HOLD_DAYS, MAX_HOLD_DAYS
from store import CLAIM_LEASE

__all__ = [
    "MAKE_KEY",
    "MAKE_RELAY_KEY",
    "RELAY_KEY_MIN_LENGTH",
    "SLACK_API_URL",
    "VERIFICATION_OFF",
    "VERIFICATION_REQUIRED",
    "Settings",
    "StorageSettings",
    "load_new_key",
    "load_settings",
    "load_storage_settings",
    "read_port",
]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LOG_FORMATS = ("text", "json")
VERIFICATION_REQUIRED, VERIFICATION_OFF = "required", "off"  # IDENTITY_VERIFICATION's values
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_USERGROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
MAKE_KEY = 'python3 -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
MAKE_RELAY_KEY = 'python3 -c "import secrets;print(secrets.token_urlsafe(32))"'
RELAY_KEY_MIN_LENGTH = 24  # a shared secret on a public URL: long enough that guessing is hopeless
EVERYONE = "*"
SLACK_API_URL = "https://slack.com/api/"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the bot is configured with; secrets are kept out of ``repr``."""

    slack_bot_token: str = field(repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = SLACK_API_URL
    bwp_api_url: str = "https://api.buywithprime.amazon.com/graphql"
    bwp_token_url: str = "https://api.buywithprime.amazon.com/token"
    bwp_client_id: str = ""
    bwp_client_secret: str = field(default="", repr=False)
    bwp_target_id: str = ""
    bwp_api_version: str = "2024-11-01"
    relay_api_key: str | None = field(default=None, repr=False)
    database_path: Path = Path("data-requests.db")
    database_url: str | None = field(default=None, repr=False)  # PostgreSQL, in DATABASE_PATH's place when set
    claim_lease: float = CLAIM_LEASE  # seconds a copy keeps a post or an event it took to itself (store._database)
    encryption_key: bytes | None = field(default=None, repr=False)
    allowed_users: frozenset[str] = frozenset()
    allowed_usergroup: str | None = None
    allow_everyone: bool = False
    reconcile_interval: float = 300.0
    port: int = 3000
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one JSON object per line
    sandbox: bool = False
    response_deadline_days: int = 30
    deletion_hold_days: int = DEFAULT_HOLD_DAYS  # an erasure's holding period at Amazon, unless it says --hold
    identity_verification: str = VERIFICATION_REQUIRED  # or "off": Download and Approve do not wait for it
    retention_days: int = 365
    sandbox_complete_after: float = 20.0
    sandbox_hold_seconds: float = 6.0  # --sandbox only: one day of a deletion's hold lasts this long (10 days: 1 min)
    public_url: str | None = None

    @property
    def database(self) -> Path | str:
        """Where the state is kept: the PostgreSQL URL when ``DATABASE_URL`` is set, else the SQLite file."""
        return self.database_url or self.database_path

    @property
    def socket_mode(self) -> bool:
        """Slack traffic arrives over Socket Mode rather than HTTP."""
        return self.slack_app_token is not None

    @property
    def verification_required(self) -> bool:
        """Download and an erasure's Approve wait until the shopper's identity is recorded as verified."""
        return self.identity_verification != VERIFICATION_OFF

    @property
    def everyone_allowed(self) -> bool:
        """Every workspace member may use the bot: ``ALLOWED_USERS=*``, or the sandbox without an allow-list."""
        return self.allow_everyone

    def secrets(self) -> list[str]:
        """Every secret value configured, for the log redaction filter."""
        values = [
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.bwp_client_secret,
            self.relay_api_key,
            *_url_secrets(self.database_url),
        ]
        if self.encryption_key is not None:
            values.append(base64.urlsafe_b64encode(self.encryption_key).decode())
        return [v for v in values if v]


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """What the offline commands (audit, purge) need: the database, its key, the retention period."""

    database_path: Path
    encryption_key: bytes | None = field(repr=False)
    retention_days: int
    database_url: str | None = field(default=None, repr=False)

    @property
    def database(self) -> Path | str:
        """Where the state is kept: the PostgreSQL URL when ``DATABASE_URL`` is set, else the SQLite file."""
        return self.database_url or self.database_path


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Settings)}


def _database_path(reader: _Reader) -> Path:
    """The SQLite file (used when ``DATABASE_URL`` is unset)."""
    return Path(reader.optional("DATABASE_PATH") or _DEFAULTS["database_path"])


def _database_url(reader: _Reader) -> str | None:
    """``DATABASE_URL``, a PostgreSQL URL; anything else is named at start rather than guessed at."""
    url = reader.optional("DATABASE_URL")
    if url is None:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        reader.problem(
            "DATABASE_URL",
            "is not a PostgreSQL URL",
            "write it as postgresql://USER:PASSWORD@HOST:5432/DATABASE, or unset it to keep the state in DATABASE_PATH",
        )
        return None
    return url


def _url_secrets(url: str | None) -> list[str]:
    """The parts of a database URL the logs must never show: the URL itself and its password."""
    if not url:
        return []
    password = urllib.parse.urlsplit(url).password
    return [url, *([password, urllib.parse.unquote(password)] if password else [])]


def load_settings(env: Mapping[str, str], *, sandbox: bool = False) -> Settings:
    """Build settings from ``env``; raise ConfigError naming every bad setting, one per line."""
    reader = _Reader(env)
    database = _database_path(reader)
    database_url = _database_url(reader)
    bot_token = reader.required(
        "SLACK_BOT_TOKEN", "copy the Bot User OAuth Token (xoxb-…) from the Slack app's OAuth & Permissions page"
    )
    if bot_token and not bot_token.startswith("xoxb-"):
        reader.problem(
            "SLACK_BOT_TOKEN",
            "is not a bot token (it does not start with xoxb-)",
            "copy the Bot User OAuth Token from the Slack app's OAuth & Permissions page, not a user or app token",
        )
    app_token = reader.optional("SLACK_APP_TOKEN")
    if app_token is not None and not app_token.startswith("xapp-"):
        reader.problem(
            "SLACK_APP_TOKEN",
            "is not an app-level token (it does not start with xapp-)",
            "create one with the connections:write scope under Basic Information → App-Level Tokens",
        )
    signing_secret = reader.optional("SLACK_SIGNING_SECRET")
    if signing_secret is None and app_token is None:
        reader.problem(
            "SLACK_SIGNING_SECRET",
            "is not set, and HTTP mode needs it to verify Slack's requests",
            "copy it from the Slack app's Basic Information page (or set SLACK_APP_TOKEN for Socket Mode)",
        )
    credentials = {}
    for name in ("BWP_CLIENT_ID", "BWP_CLIENT_SECRET", "BWP_TARGET_ID"):
        if sandbox:
            credentials[name] = reader.optional(name) or ""
        else:
            credentials[name] = reader.required(
                name,
                "take it from the Buy with Prime merchant console (or run with --sandbox to try the bot without it)",
            )
    allowed_users, everyone = reader.user_ids("ALLOWED_USERS")
    usergroup = reader.usergroup("ALLOWED_USERGROUP")
    if reader.optional("ALLOWED_USERS") is None and reader.optional("ALLOWED_USERGROUP") is None:
        if sandbox:
            everyone = True  # the sandbox holds no real shopper data; the start warns instead
        else:
            reader.problem(
                "ALLOWED_USERS",
                "and ALLOWED_USERGROUP are both unset, so anyone in the workspace could download shopper data",
                "set ALLOWED_USERS to Slack user ids or ALLOWED_USERGROUP to a user group id "
                f"(ALLOWED_USERS={EVERYONE} lets every workspace member in, on purpose)",
            )
    settings = Settings(
        slack_bot_token=bot_token,
        slack_signing_secret=signing_secret,
        slack_app_token=app_token,
        slack_api_url=reader.url("SLACK_API_URL", _DEFAULTS["slack_api_url"]),
        bwp_api_url=reader.url("BWP_API_URL", _DEFAULTS["bwp_api_url"]),
        bwp_token_url=reader.url("BWP_TOKEN_URL", _DEFAULTS["bwp_token_url"]),
        bwp_client_id=credentials["BWP_CLIENT_ID"],
        bwp_client_secret=credentials["BWP_CLIENT_SECRET"],
        bwp_target_id=credentials["BWP_TARGET_ID"],
        bwp_api_version=reader.optional("BWP_API_VERSION") or _DEFAULTS["bwp_api_version"],
        relay_api_key=reader.relay_key("RELAY_API_KEY"),
        database_path=database,
        database_url=database_url,
        claim_lease=reader.seconds("CLAIM_LEASE", _DEFAULTS["claim_lease"]),
        encryption_key=_key_with(reader, database_url=database_url, database=database),
        allowed_users=allowed_users,
        allowed_usergroup=usergroup,
        allow_everyone=everyone,
        reconcile_interval=reader.seconds("RECONCILE_INTERVAL", _DEFAULTS["reconcile_interval"]),
        port=reader.port("PORT", _DEFAULTS["port"]),
        log_level=reader.log_level("LOG_LEVEL", _DEFAULTS["log_level"]),
        log_format=reader.choice("LOG_FORMAT", _LOG_FORMATS, _DEFAULTS["log_format"]),
        sandbox=sandbox,
        response_deadline_days=reader.days("RESPONSE_DEADLINE_DAYS", _DEFAULTS["response_deadline_days"]),
        deletion_hold_days=reader.days(
            "DELETION_HOLD_DAYS", _DEFAULTS["deletion_hold_days"], low=0, high=MAX_HOLD_DAYS
        ),
        identity_verification=reader.choice(
            "IDENTITY_VERIFICATION", (VERIFICATION_REQUIRED, VERIFICATION_OFF), _DEFAULTS["identity_verification"]
        ),
        retention_days=reader.days("RETENTION_DAYS", _DEFAULTS["retention_days"], high=3650),
        sandbox_complete_after=reader.seconds("SANDBOX_COMPLETE_AFTER", _DEFAULTS["sandbox_complete_after"], low=0),
        sandbox_hold_seconds=reader.seconds("SANDBOX_HOLD_SECONDS", _DEFAULTS["sandbox_hold_seconds"], low=0),
        public_url=reader.url("PUBLIC_URL", "https://bot.example.com") if reader.optional("PUBLIC_URL") else None,
    )
    reader.raise_problems()
    return settings


def load_storage_settings(env: Mapping[str, str]) -> StorageSettings:
    """Only the storage settings: the audit and purge commands run without Slack or Amazon credentials."""
    reader = _Reader(env)
    database = _database_path(reader)
    database_url = _database_url(reader)
    settings = StorageSettings(
        database_path=database,
        database_url=database_url,
        encryption_key=reader.encryption_key("ENCRYPTION_KEY", database=None if database_url else database),
        retention_days=reader.days("RETENTION_DAYS", _DEFAULTS["retention_days"], high=3650),
    )
    reader.raise_problems()
    return settings


def _key_with(reader: _Reader, *, database_url: str | None, database: Path) -> bytes | None:
    """ENCRYPTION_KEY; with DATABASE_URL it is required: every copy of the bot must seal and open with it, and a
    key file made beside one copy would not be beside the others."""
    if database_url is None:
        return reader.encryption_key("ENCRYPTION_KEY", database=database)
    key = reader.encryption_key("ENCRYPTION_KEY")
    if key is None and reader.optional("ENCRYPTION_KEY") is None:
        reader.problem(
            "ENCRYPTION_KEY",
            "is not set, and DATABASE_URL needs it (no key file is made for PostgreSQL)",
            f"set it to the same key in every copy of the bot; make one with: {MAKE_KEY}",
        )
    return key


def read_port(env: Mapping[str, str]) -> int:
    """``PORT`` alone, for ``playground``: its page is served there while the bot takes a port of its own."""
    reader = _Reader(env)
    port = reader.port("PORT", _DEFAULTS["port"])
    reader.raise_problems()
    return port


def load_new_key(env: Mapping[str, str]) -> bytes:
    """``NEW_ENCRYPTION_KEY``, for ``rotate-key``: required, and in the same form as ``ENCRYPTION_KEY``."""
    reader = _Reader(env)
    key = reader.encryption_key("NEW_ENCRYPTION_KEY")
    if reader.optional("NEW_ENCRYPTION_KEY") is None:
        reader.problem(
            "NEW_ENCRYPTION_KEY", "is not set: rotate-key re-encrypts the data under it", f"make one with: {MAKE_KEY}"
        )
    reader.raise_problems()
    assert key is not None
    return key


def _key_for(database: Path) -> str | None:
    """How to set the key ``database`` needs, when it holds data (a new key would not open it); else None."""
    # Imported here, on this error path only: reading settings stays free of the store's imports.
    from store import EmailCipher, key_file_for, read_key_file, stored_key_state

    try:
        state = stored_key_state(database)
    except (sqlite3.Error, OSError):
        return f"set it to the key {database} was created with" if database.exists() else None
    if not state.has_data:
        return None
    key_file = key_file_for(database)
    try:
        file_key = read_key_file(key_file)
    except (ConfigError, OSError):
        file_key = None
    if file_key is not None and state.opens(EmailCipher(file_key)):
        return f"copy the contents of {key_file} into it (that file holds the key {database} needs), or unset it"
    which = f" (key {state.fingerprint})" if state.fingerprint else ""
    return f"set it to the key {database} holds data under{which}: a new key cannot open that data"


class _Reader:
    """Reads and checks one setting at a time, collecting what is wrong instead of stopping."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._problems: list[tuple[str, str]] = []

    def problem(self, name: str, what: str, fix: str) -> None:
        """Record that ``name`` ``what`` (is wrong how), and ``fix``: something the first half did not say."""
        self._problems.append((f"{name} {what}", fix))

    def raise_problems(self) -> None:
        if self._problems:
            raise ConfigError(*self._problems)

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def required(self, name: str, fix: str) -> str:
        value = self.optional(name)
        if value is None:
            self.problem(name, "is not set", fix)
            return ""
        return value

    def url(self, name: str, default: str) -> str:
        value = self.optional(name) or default
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.problem(name, "is not an http(s) URL", f"write it whole, scheme and host, such as {default}")
        return value

    def encryption_key(self, name: str, *, database: Path | None = None) -> bytes | None:
        """A 32-byte key; ``database``: the one it must open, whose key a malformed value is told to use."""
        value = self.optional(name)
        if value is None:
            return None
        try:
            key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            fix = _key_for(database) if database is not None else None
            self.problem(name, "is not 32 bytes in urlsafe base64", fix or f"make a new key with: {MAKE_KEY}")
            return None
        return key

    def relay_key(self, name: str) -> str | None:
        value = self.optional(name)
        if value is not None and len(value) < RELAY_KEY_MIN_LENGTH:
            self.problem(
                name,
                f"is {len(value)} characters long; the relay needs at least {RELAY_KEY_MIN_LENGTH}",
                f"make one with: {MAKE_RELAY_KEY}",
            )
            return None
        return value

    def user_ids(self, name: str) -> tuple[frozenset[str], bool]:
        """The listed user ids, and whether the list is ``*`` (every workspace member)."""
        value = self.optional(name) or ""
        if value == EVERYONE:
            return frozenset(), True
        ids = frozenset(part.strip() for part in value.split(",") if part.strip())
        bad = sorted(i for i in ids if not _USER_ID.match(i))
        if bad:
            self.problem(
                name,
                f"holds {bad[0]!r}, which is not a Slack user id",
                "list member ids such as U012ABCDEF, comma-separated (profile → ⋮ → Copy member ID), "
                f"or {EVERYONE} alone for every workspace member",
            )
        return ids, False

    def usergroup(self, name: str) -> str | None:
        value = self.optional(name)
        if value is not None and not _USERGROUP_ID.match(value):
            self.problem(
                name,
                "is not a Slack user group id",
                "use the group's id such as S012ABCDEF (the last part of the group's URL), not its @handle",
            )
            return None
        return value

    def seconds(self, name: str, default: float, *, low: float = 1) -> float:
        value = self.optional(name)
        if value is None:
            return default
        try:
            seconds = float(value) if value.isascii() else -1.0  # float() also reads other scripts' digits
        except ValueError:
            seconds = -1.0
        if not low <= seconds <= 86_400:
            self.problem(
                name,
                f"must be a number of seconds between {low:g} and 86400",
                f"set it in that range, or unset it for the default ({default:g})",
            )
            return default
        return seconds

    def days(self, name: str, default: int, *, low: int = 1, high: int = 365) -> int:
        value = self.optional(name)
        if value is None:
            return default
        if not _whole_number(value) or not low <= int(value) <= high:
            self.problem(
                name,
                f"must be a whole number of days between {low} and {high}",
                f"set it in that range, or unset it for the default ({default})",
            )
            return default
        return int(value)

    def port(self, name: str, default: int) -> int:
        value = self.optional(name)
        if value is None:
            return default
        if not _whole_number(value) or not 0 <= int(value) <= 65_535:
            self.problem(
                name, "must be a TCP port number between 0 and 65535", f"set a free port, or unset it for {default}"
            )
            return default
        return int(value)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.optional(name) or default).lower()
        if value not in choices:
            self.problem(name, f"must be one of {', '.join(choices)}", f"set one of them, or unset it for {default}")
            return default
        return value

    def log_level(self, name: str, default: str) -> str:
        value = (self.optional(name) or default).upper()
        if value not in _LOG_LEVELS:
            self.problem(name, f"must be one of {', '.join(_LOG_LEVELS)}", "INFO is the usual; DEBUG shows more")
            return default
        return value


def _whole_number(value: str) -> bool:
    """ASCII digits only: ``str.isdigit`` and ``int`` also take other scripts' digits (``٣``) and superscripts."""
    return value.isascii() and value.isdigit()
