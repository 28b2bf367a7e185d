"""Settings as an operator writes them: what a minimal environment gives, and what each mistake says."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from bot.settings import load_settings
from core import ConfigError

KEY = os.urandom(32)
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-bot-token-value",
    "SLACK_SIGNING_SECRET": "signing-secret-0123456789abcdef",
    "SLACK_APP_TOKEN": "xapp-1-A0-3333-app-token-value",
    "BWP_CLIENT_SECRET": "bwp-client-secret-value-4444",
    "RELAY_API_KEY": "relay-api-key-value-5555",
    "ENCRYPTION_KEY": base64.urlsafe_b64encode(KEY).decode(),
}
HTTP_MODE = {
    "SLACK_BOT_TOKEN": SECRETS["SLACK_BOT_TOKEN"],
    "SLACK_SIGNING_SECRET": SECRETS["SLACK_SIGNING_SECRET"],
    "BWP_CLIENT_ID": "amzn1.application-oa2-client.test",
    "BWP_CLIENT_SECRET": SECRETS["BWP_CLIENT_SECRET"],
    "BWP_TARGET_ID": "amzn1.bp.test",
    "ALLOWED_USERS": "U0ALICE",
}


def problems(env: dict[str, str], *, sandbox: bool = False) -> list[str]:
    """The lines of the ConfigError that ``env`` gives."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env, sandbox=sandbox)
    return str(caught.value).splitlines()


def test_minimal_http_mode_environment_gives_the_documented_defaults() -> None:
    """The five required names and an allow-list give HTTP mode with every default exactly as the docs list it."""
    settings = load_settings(HTTP_MODE)
    assert not settings.socket_mode and not settings.sandbox
    assert settings.slack_bot_token == HTTP_MODE["SLACK_BOT_TOKEN"]
    assert settings.slack_signing_secret == HTTP_MODE["SLACK_SIGNING_SECRET"]
    assert settings.slack_app_token is None
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.bwp_api_url == "https://api.buywithprime.amazon.com/graphql"
    assert settings.bwp_token_url == "https://api.buywithprime.amazon.com/token"
    assert settings.bwp_api_version == "2024-11-01"
    assert (settings.bwp_client_id, settings.bwp_target_id) == (HTTP_MODE["BWP_CLIENT_ID"], HTTP_MODE["BWP_TARGET_ID"])
    assert settings.relay_api_key is None
    assert settings.database_path == Path("data-requests.db")
    assert settings.encryption_key is None
    assert settings.allowed_users == {"U0ALICE"} and settings.allowed_usergroup is None
    assert not settings.everyone_allowed
    assert settings.reconcile_interval == 300
    assert settings.port == 3000
    assert settings.log_level == "INFO"
    assert settings.log_format == "text"


def test_app_token_without_signing_secret_means_socket_mode() -> None:
    """SLACK_APP_TOKEN set and no signing secret is a complete Socket Mode configuration."""
    env = {k: v for k, v in HTTP_MODE.items() if k != "SLACK_SIGNING_SECRET"}
    settings = load_settings({**env, "SLACK_APP_TOKEN": SECRETS["SLACK_APP_TOKEN"]})
    assert settings.socket_mode
    assert settings.slack_app_token == SECRETS["SLACK_APP_TOKEN"]
    assert settings.slack_signing_secret is None


def test_sandbox_needs_no_buy_with_prime_credentials() -> None:
    """With --sandbox the bot token and signing secret are enough."""
    env = {k: HTTP_MODE[k] for k in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")}
    settings = load_settings(env, sandbox=True)
    assert settings.sandbox
    assert (settings.bwp_client_id, settings.bwp_client_secret, settings.bwp_target_id) == ("", "", "")


def test_every_optional_setting_is_read() -> None:
    """Each optional name in the "Settings" table (docs/operating.md) reaches the settings, parsed."""
    env = {
        **HTTP_MODE,
        "SLACK_API_URL": "https://slack-gov.com/api/",
        "BWP_API_URL": "http://127.0.0.1:9000/graphql",
        "BWP_TOKEN_URL": "http://127.0.0.1:9000/token",
        "BWP_API_VERSION": "2025-01-01",
        "RELAY_API_KEY": SECRETS["RELAY_API_KEY"],
        "DATABASE_PATH": "/var/lib/bot/requests.db",
        "ENCRYPTION_KEY": SECRETS["ENCRYPTION_KEY"],
        "ALLOWED_USERS": "U012ABCDEF, W0ENTERPRISE ,",
        "ALLOWED_USERGROUP": "S012ABCDEF",
        "RECONCILE_INTERVAL": "60",
        "PORT": "8080",
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "JSON",
    }
    settings = load_settings(env)
    assert settings.slack_api_url == "https://slack-gov.com/api/"
    assert (settings.bwp_api_url, settings.bwp_token_url) == (env["BWP_API_URL"], env["BWP_TOKEN_URL"])
    assert settings.bwp_api_version == "2025-01-01"
    assert settings.relay_api_key == SECRETS["RELAY_API_KEY"]
    assert settings.database_path == Path("/var/lib/bot/requests.db")
    assert settings.encryption_key == KEY
    assert settings.allowed_users == {"U012ABCDEF", "W0ENTERPRISE"}
    assert settings.allowed_usergroup == "S012ABCDEF"
    assert not settings.everyone_allowed
    assert (settings.reconcile_interval, settings.port, settings.log_level) == (60, 8080, "DEBUG")
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ENCRYPTION_KEY", "too-short"),
        ("ENCRYPTION_KEY", base64.urlsafe_b64encode(os.urandom(16)).decode()),
        ("SLACK_BOT_TOKEN", "xoxp-1111-user-token"),
        ("SLACK_APP_TOKEN", "xoxb-not-an-app-token"),
        ("ALLOWED_USERS", "U012ABCDEF,alice"),
        ("ALLOWED_USERGROUP", "@compliance"),
        ("RECONCILE_INTERVAL", "abc"),
        ("RECONCILE_INTERVAL", "0"),
        ("PORT", "70000"),
        ("PORT", "http"),
        ("LOG_LEVEL", "LOUD"),
        ("LOG_FORMAT", "xml"),
        ("SLACK_API_URL", "slack.com/api"),
        ("BWP_API_URL", "ftp://api.buywithprime.amazon.com/graphql"),
        ("BWP_TOKEN_URL", "not a url"),
        ("DELETION_HOLD_DAYS", "٣"),  # Arabic-Indic three: str.isdigit and int() accept it, the bot does not
        ("RESPONSE_DEADLINE_DAYS", "³⁰"),
        ("PORT", "３０００"),  # full-width digits
        ("RECONCILE_INTERVAL", "٣٠٠"),  # float() reads these too
    ],
)
def test_each_malformed_value_is_one_line_naming_its_setting(name: str, value: str) -> None:
    """One bad value gives exactly one line, and it starts with the setting's name."""
    lines = problems({**HTTP_MODE, name: value})
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{name} ")


def test_a_bad_encryption_key_says_how_to_make_one() -> None:
    """The ENCRYPTION_KEY line carries a command that prints a valid key."""
    (line,) = problems({**HTTP_MODE, "ENCRYPTION_KEY": "short"})
    assert "urlsafe_b64encode(os.urandom(32))" in line


def test_missing_required_settings_each_get_a_line() -> None:
    """An empty environment names every required setting, one per line, and says where to find it."""
    lines = problems({})
    names = [line.split(" ", 1)[0] for line in lines]
    assert names == [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "BWP_CLIENT_ID",
        "BWP_CLIENT_SECRET",
        "BWP_TARGET_ID",
        "ALLOWED_USERS",
    ]
    assert all("--sandbox" in line for line in lines if line.startswith("BWP_"))


def test_several_problems_give_several_lines() -> None:
    """Every mistake is reported at once, so the operator fixes them in one go."""
    env = {**HTTP_MODE, "SLACK_BOT_TOKEN": "", "PORT": "70000", "LOG_LEVEL": "LOUD", "ALLOWED_USERGROUP": "@staff"}
    lines = problems(env)
    assert sorted(line.split(" ", 1)[0] for line in lines) == [
        "ALLOWED_USERGROUP",
        "LOG_LEVEL",
        "PORT",
        "SLACK_BOT_TOKEN",
    ]


def test_secrets_are_not_in_the_repr() -> None:
    """Printing or logging the settings shows no token, secret or key."""
    settings = load_settings({**HTTP_MODE, **SECRETS})
    shown = repr(settings) + str(settings)
    for value in SECRETS.values():
        assert value not in shown
    assert repr(KEY) not in shown
    assert sorted(settings.secrets()) == sorted(SECRETS.values())


def test_a_rejected_token_is_not_echoed() -> None:
    """A token in the wrong variable may still be a live secret, so the message names the setting, not the value."""
    user_token = "xoxp-9999-live-user-token-value"
    (line,) = problems({**HTTP_MODE, "SLACK_BOT_TOKEN": user_token})
    assert user_token not in line


# ----------------------------------------------------------------- closed by default, strong secrets


def test_no_allow_list_is_refused_in_one_line_naming_both_settings_and_the_opt_in() -> None:
    """Closed by default: neither ALLOWED_USERS nor ALLOWED_USERGROUP set is one problem that names both and `*`."""
    env = {k: v for k, v in HTTP_MODE.items() if k != "ALLOWED_USERS"}
    (line,) = problems(env)
    assert line.startswith("ALLOWED_USERS ") and "ALLOWED_USERGROUP" in line and "ALLOWED_USERS=*" in line


def test_allowed_users_star_opens_the_bot_to_everyone_on_purpose() -> None:
    """`ALLOWED_USERS=*` is the explicit opt-in: everyone allowed, no user list."""
    settings = load_settings({**HTTP_MODE, "ALLOWED_USERS": "*"})
    assert settings.everyone_allowed and settings.allowed_users == frozenset()


def test_a_user_group_alone_is_an_allow_list() -> None:
    """ALLOWED_USERGROUP without ALLOWED_USERS is enough, and does not open the bot to everyone."""
    env = {k: v for k, v in HTTP_MODE.items() if k != "ALLOWED_USERS"}
    settings = load_settings({**env, "ALLOWED_USERGROUP": "S012ABCDEF"})
    assert not settings.everyone_allowed


def test_the_sandbox_runs_without_an_allow_list_open_to_everyone() -> None:
    """--sandbox holds no real shopper data: no allow-list is allowed, and means everyone (the start warns)."""
    env = {k: HTTP_MODE[k] for k in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")}
    assert load_settings(env, sandbox=True).everyone_allowed
    assert not load_settings({**env, "ALLOWED_USERS": "U0ALICE"}, sandbox=True).everyone_allowed


@pytest.mark.parametrize("length", [1, 23])
def test_a_short_relay_key_is_refused_with_how_to_make_one(length: int) -> None:
    """RELAY_API_KEY shorter than 24 characters is one line naming it, its length, and a command that makes one."""
    (line,) = problems({**HTTP_MODE, "RELAY_API_KEY": "k" * length})
    assert line.startswith("RELAY_API_KEY ") and f"{length} characters" in line and "24" in line
    assert "secrets.token_urlsafe" in line
    assert load_settings({**HTTP_MODE, "RELAY_API_KEY": "k" * 24}).relay_api_key == "k" * 24


def test_every_problem_has_a_fix_that_adds_something() -> None:
    """Each problem's fix half is not empty and is not just the first half again (check prints them apart)."""
    env = {
        "SLACK_BOT_TOKEN": "xoxp-1",
        "SLACK_APP_TOKEN": "bad",
        "PORT": "x",
        "LOG_LEVEL": "LOUD",
        "RELAY_API_KEY": "a",
    }
    with pytest.raises(ConfigError) as caught:
        load_settings({**env, "ALLOWED_USERS": "alice", "RECONCILE_INTERVAL": "0", "SLACK_API_URL": "nope"})
    assert len(caught.value.problems) >= 8
    for what, fix in caught.value.problems:
        assert fix and fix not in what and what not in fix, (what, fix)


def test_a_database_url_keeps_the_state_in_postgresql_and_needs_the_shared_key() -> None:
    """DATABASE_URL takes DATABASE_PATH's place; without ENCRYPTION_KEY it is one problem naming both (no key
    file is made for PostgreSQL), and a URL of another kind is named rather than guessed at."""
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    url = "postgresql://bot:pa%24%24word@db:5432/requests"
    settings = load_settings({**HTTP_MODE, "DATABASE_URL": url, "ENCRYPTION_KEY": key})
    assert settings.database == url and settings.database_url == url
    assert url in settings.secrets() and "pa$$word" in settings.secrets()  # the log redaction hides both forms
    assert url not in repr(settings)
    (line,) = problems({**HTTP_MODE, "DATABASE_URL": url})
    assert line.startswith("ENCRYPTION_KEY ") and "DATABASE_URL" in line and "pa%24" not in line
    (line,) = problems({**HTTP_MODE, "DATABASE_URL": "mysql://bot@db/requests", "ENCRYPTION_KEY": key})
    assert line.startswith("DATABASE_URL ") and "postgresql://" in line and "mysql" not in line
    assert load_settings(HTTP_MODE).database == Path("data-requests.db")
