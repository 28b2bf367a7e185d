"""Settings, read once from the environment at start (see CONTRACT.md).

Nothing else in the project reads ``os.environ``: the rest receives what it
needs from this frozen value, which keeps tests free to build one by hand.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.errors import ConfigError

__all__ = ["Settings", "StorageSettings", "load_settings", "load_storage_settings"]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LOG_FORMATS = ("text", "json")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_USERGROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
_MAKE_KEY = 'python3 -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the bot is configured with; secrets are kept out of ``repr``."""

    slack_bot_token: str = field(repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    bwp_api_url: str = "https://api.buywithprime.amazon.com/graphql"
    bwp_token_url: str = "https://api.buywithprime.amazon.com/token"
    bwp_client_id: str = ""
    bwp_client_secret: str = field(default="", repr=False)
    bwp_target_id: str = ""
    bwp_api_version: str = "2024-11-01"
    relay_api_key: str | None = field(default=None, repr=False)
    database_path: Path = Path("data-requests.db")
    encryption_key: bytes | None = field(default=None, repr=False)
    allowed_users: frozenset[str] = frozenset()
    allowed_usergroup: str | None = None
    reconcile_interval: float = 300.0
    port: int = 3000
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one JSON object per line
    sandbox: bool = False
    response_deadline_days: int = 30
    retention_days: int = 365
    sandbox_complete_after: float = 20.0
    public_url: str | None = None

    @property
    def socket_mode(self) -> bool:
        """Slack traffic arrives over Socket Mode rather than HTTP."""
        return self.slack_app_token is not None

    @property
    def everyone_allowed(self) -> bool:
        """Neither an allow-list nor a user group restricts who may use the bot."""
        return not self.allowed_users and self.allowed_usergroup is None

    def secrets(self) -> list[str]:
        """Every secret value configured, for the log redaction filter."""
        values = [
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.bwp_client_secret,
            self.relay_api_key,
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


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Settings)}


def load_settings(env: Mapping[str, str], *, sandbox: bool = False) -> Settings:
    """Build settings from ``env``; raise ConfigError naming every bad setting, one per line."""
    reader = _Reader(env)
    bot_token = reader.required("SLACK_BOT_TOKEN", "the bot token from the Slack app's OAuth page")
    if bot_token and not bot_token.startswith("xoxb-"):
        reader.problem("SLACK_BOT_TOKEN", "must be a bot token starting with xoxb- (OAuth & Permissions page)")
    app_token = reader.optional("SLACK_APP_TOKEN")
    if app_token is not None and not app_token.startswith("xapp-"):
        reader.problem("SLACK_APP_TOKEN", "must be an app-level token starting with xapp- (Basic Information page)")
    signing_secret = reader.optional("SLACK_SIGNING_SECRET")
    if signing_secret is None and app_token is None:
        reader.problem(
            "SLACK_SIGNING_SECRET",
            "is required in HTTP mode: copy it from the Slack app's Basic Information page "
            "(or set SLACK_APP_TOKEN for Socket Mode)",
        )
    credentials = {}
    for name in ("BWP_CLIENT_ID", "BWP_CLIENT_SECRET", "BWP_TARGET_ID"):
        if sandbox:
            credentials[name] = reader.optional(name) or ""
        else:
            credentials[name] = reader.required(
                name, "from the Buy with Prime merchant console (or run with --sandbox to try the bot without it)"
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
        relay_api_key=reader.optional("RELAY_API_KEY"),
        database_path=Path(reader.optional("DATABASE_PATH") or _DEFAULTS["database_path"]),
        encryption_key=reader.encryption_key("ENCRYPTION_KEY"),
        allowed_users=reader.user_ids("ALLOWED_USERS"),
        allowed_usergroup=reader.usergroup("ALLOWED_USERGROUP"),
        reconcile_interval=reader.seconds("RECONCILE_INTERVAL", _DEFAULTS["reconcile_interval"]),
        port=reader.port("PORT", _DEFAULTS["port"]),
        log_level=reader.log_level("LOG_LEVEL", _DEFAULTS["log_level"]),
        log_format=reader.choice("LOG_FORMAT", _LOG_FORMATS, _DEFAULTS["log_format"]),
        sandbox=sandbox,
        response_deadline_days=reader.days("RESPONSE_DEADLINE_DAYS", _DEFAULTS["response_deadline_days"]),
        retention_days=reader.days("RETENTION_DAYS", _DEFAULTS["retention_days"], high=3650),
        sandbox_complete_after=reader.seconds("SANDBOX_COMPLETE_AFTER", _DEFAULTS["sandbox_complete_after"], low=0),
        public_url=reader.url("PUBLIC_URL", "https://bot.example.com") if reader.optional("PUBLIC_URL") else None,
    )
    reader.raise_problems()
    return settings


def load_storage_settings(env: Mapping[str, str]) -> StorageSettings:
    """Only the storage settings: the audit and purge commands run without Slack or Amazon credentials."""
    reader = _Reader(env)
    settings = StorageSettings(
        database_path=Path(reader.optional("DATABASE_PATH") or _DEFAULTS["database_path"]),
        encryption_key=reader.encryption_key("ENCRYPTION_KEY"),
        retention_days=reader.days("RETENTION_DAYS", _DEFAULTS["retention_days"], high=3650),
    )
    reader.raise_problems()
    return settings


class _Reader:
    """Reads and checks one setting at a time, collecting what is wrong instead of stopping."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._problems: list[str] = []

    def problem(self, name: str, how: str) -> None:
        self._problems.append(f"{name} {how}")

    def raise_problems(self) -> None:
        if self._problems:
            raise ConfigError("\n".join(self._problems))

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def required(self, name: str, where: str) -> str:
        value = self.optional(name)
        if value is None:
            self.problem(name, f"is not set: {where}")
            return ""
        return value

    def url(self, name: str, default: str) -> str:
        value = self.optional(name) or default
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.problem(name, f"must be an http(s) URL such as {default}")
        return value

    def encryption_key(self, name: str) -> bytes | None:
        value = self.optional(name)
        if value is None:
            return None
        try:
            key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            self.problem(name, f"must be 32 random bytes in urlsafe base64; make one with: {_MAKE_KEY}")
            return None
        return key

    def user_ids(self, name: str) -> frozenset[str]:
        value = self.optional(name) or ""
        ids = frozenset(part.strip() for part in value.split(",") if part.strip())
        bad = sorted(i for i in ids if not _USER_ID.match(i))
        if bad:
            self.problem(name, f"must list Slack user ids such as U012ABCDEF, comma-separated (not {bad[0]!r})")
        return ids

    def usergroup(self, name: str) -> str | None:
        value = self.optional(name)
        if value is not None and not _USERGROUP_ID.match(value):
            self.problem(name, "must be a Slack user group id such as S012ABCDEF (not its @handle)")
            return None
        return value

    def seconds(self, name: str, default: float, *, low: float = 1) -> float:
        value = self.optional(name)
        if value is None:
            return default
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not low <= seconds <= 86_400:
            self.problem(name, f"must be a number of seconds between {low:g} and 86400")
            return default
        return seconds

    def days(self, name: str, default: int, *, high: int = 365) -> int:
        value = self.optional(name)
        if value is None:
            return default
        if not value.isdigit() or not 1 <= int(value) <= high:
            self.problem(name, f"must be a whole number of days between 1 and {high}")
            return default
        return int(value)

    def port(self, name: str, default: int) -> int:
        value = self.optional(name)
        if value is None:
            return default
        if not value.isdigit() or not 0 <= int(value) <= 65_535:
            self.problem(name, "must be a TCP port number between 0 and 65535")
            return default
        return int(value)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.optional(name) or default).lower()
        if value not in choices:
            self.problem(name, f"must be one of {', '.join(choices)}")
            return default
        return value

    def log_level(self, name: str, default: str) -> str:
        value = (self.optional(name) or default).upper()
        if value not in _LOG_LEVELS:
            self.problem(name, f"must be one of {', '.join(_LOG_LEVELS)}")
            return default
        return value
