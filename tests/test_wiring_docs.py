"""The setup documents say what the code does: the event wiring (docs/operating.md) and the Slack app manifest.

An operator wires Amazon's events and creates the Slack app from these texts alone, so a kind of request the
bot runs but the texts leave out fails quietly (an erasure's thread waits for the next poll; staff never see
the command). The bot's own registry of kinds (``handlers.kinds.registry.KINDS``) is the one list both are held to.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from handlers.intake_form import NEW_REQUEST_SHORTCUT
from handlers.kinds.registry import KINDS

ROOT = Path(__file__).parent.parent
EVENT_TYPE = re.compile(r"\bPERSONAL_DATA_[A-Z_]+\b")


def relay_event_types() -> set[str]:
    """Every event type the relay stores (any other it answers 2xx and drops)."""
    return {event for flow in KINDS.values() for event in flow.operations.events}


def wiring_section() -> str:
    """The operator's "Wiring events" section."""
    return (ROOT / "docs" / "operating.md").read_text().split("\n## Wiring events\n", 1)[1].split("\n## ", 1)[0]


def manifest_value(key: str, *, indent: int) -> str:
    """One ``key: value`` line of manifest.yml at this indentation, unquoted (the file keeps them on one line)."""
    found = re.search(rf"^ {{{indent}}}{key}: (.+)$", (ROOT / "manifest.yml").read_text(), re.MULTILINE)
    assert found, f"manifest.yml has no {key!r} at indentation {indent}"
    return found.group(1).strip().strip('"')


def test_the_docs_eventbridge_rule_matches_exactly_the_event_types_the_relay_stores() -> None:
    """The rule's ``detail-type`` list is every type the relay acts on, no fewer (their tasks would end only by
    polling) and no more (EventBridge would deliver events the relay drops)."""
    rule = json.loads(wiring_section().split("```json", 1)[1].split("```", 1)[0])
    assert sorted(rule["detail-type"]) == sorted(relay_event_types())


def test_the_docs_webhook_subscription_takes_every_event_type_the_relay_stores() -> None:
    """The webhook alternative subscribes all of them: by naming each, or by pointing at the rule's list."""
    paragraph = next(part for part in wiring_section().split("\n\n") if "webhooks" in part)
    named = set(EVENT_TYPE.findall(paragraph))
    assert named == relay_event_types() or (not named and "`detail-type` list above" in paragraph), paragraph
    assert not re.search(r"\b(two|three|four|both)\b", paragraph), "a count of event types goes stale"


def test_every_event_type_the_wiring_section_names_is_one_the_relay_stores() -> None:
    """No misspelt or retired event type anywhere in the section."""
    assert set(EVENT_TYPE.findall(wiring_section())) <= relay_event_types()


def test_the_manifests_slash_command_and_app_description_name_every_kinds_command_word() -> None:
    """Slack shows the usage hint while staff type and the descriptions in the app's listing: each names the
    word that starts each kind of request (``delete`` for an erasure), within Slack's length limits."""
    usage_hint = manifest_value("usage_hint", indent=6)
    command_description = manifest_value("description", indent=6)
    app_description = manifest_value("description", indent=2)
    verbs = {flow.verb for flow in KINDS.values() if flow.verb is not None}
    assert verbs, "a kind with a command word of its own"
    for verb in verbs:
        assert re.search(rf"(^|\| ){verb} <shopper email>", usage_hint), usage_hint
        assert re.search(rf"\b{verb}\b", command_description), command_description
        assert re.search(rf"\b{verb}\b", app_description), app_description
    # Slack's manifest schema: display_information.description <= 140, usage_hint <= 1000, description <= 2000.
    assert len(app_description) <= 140 and len(usage_hint) <= 1000 and len(command_description) <= 2000


def test_the_manifests_global_shortcut_is_the_one_the_bot_listens_for() -> None:
    """The "New data request" shortcut in manifest.yml carries the callback id the bot registers, so it opens
    the form."""
    manifest = (ROOT / "manifest.yml").read_text()
    shortcut = re.search(r"^  shortcuts:\n((?:    .+\n)+)", manifest, re.MULTILINE)
    assert shortcut, "manifest.yml has no shortcuts"
    assert "name: New data request" in shortcut.group(1) and "type: global" in shortcut.group(1)
    assert f"callback_id: {NEW_REQUEST_SHORTCUT}\n" in shortcut.group(1)
