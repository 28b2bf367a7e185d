"""A database written by the first release (schema version 13) is upgraded in place, its cases kept as they were."""

from __future__ import annotations

import calendar
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from store._schema import BASELINE, BASELINE_VERSION, VERSION, migrate

DAY = 86400.0


def first_release_database(path: Path) -> None:
    """Two cases as the first release stored them: one open, one closed by staff."""
    made = calendar.timegm(time.strptime("2026-03-02 12:00", "%Y-%m-%d %H:%M"))
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(BASELINE)
        db.execute(f"PRAGMA user_version = {BASELINE_VERSION}")
        for number, closed_at in ((1, None), (2, made + 3 * DAY)):
            db.execute(
                "INSERT INTO requests (id, ref, client_token, kind, requester, channel, status, moving, never_started,"
                " created_at, updated_at, next_check_at, closed_at, closed_by)"
                " VALUES (?, ?, ?, 'retrieval', 'U0ALICE', 'C0COMPLY', 'completed', 0, 0, ?, ?, ?, ?, ?)",
                (
                    number,
                    f"ref-{number}",
                    f"token-{number}",
                    made + number,
                    made,
                    made,
                    closed_at,
                    "U0BOB" if closed_at else None,
                ),
            )


def test_the_compliance_record_upgrade_keeps_every_case_with_what_is_known_of_it(tmp_path: Path) -> None:
    """Received the day it was made (UTC), via and verification unknown, a case closed before it complied, an
    open one has no outcome yet."""
    path = tmp_path / "first-release.db"
    first_release_database(path)
    with closing(sqlite3.connect(path)) as db:
        db.row_factory = sqlite3.Row
        assert migrate(db) == VERSION
        rows = db.execute(
            "SELECT id, received_on, received_via, outside_ref, verified_by, verified_how, verified_at, outcome,"
            " denial_reason FROM requests ORDER BY id"
        ).fetchall()
    assert [dict(row) for row in rows] == [
        {
            "id": number,
            "received_on": "2026-03-02",
            "received_via": None,
            "outside_ref": None,
            "verified_by": None,
            "verified_how": None,
            "verified_at": None,
            "outcome": outcome,
            "denial_reason": None,
        }
        for number, outcome in ((1, None), (2, "complied"))
    ]


def test_an_erasure_staff_rejected_before_the_upgrade_is_recorded_as_denied(tmp_path: Path) -> None:
    """A rejected erasure, closed by staff before the outcome existed, is denied (a reason of their own words),
    not complied; one Amazon refused to start stays without an outcome (there was no case)."""
    path = tmp_path / "first-release.db"
    made = calendar.timegm(time.strptime("2026-03-02 12:00", "%Y-%m-%d %H:%M"))
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(BASELINE)
        db.execute(f"PRAGMA user_version = {BASELINE_VERSION}")
        for number, closed_by in ((1, "U0BOB"), (2, None)):
            db.execute(
                "INSERT INTO requests (id, ref, client_token, kind, requester, channel, status, moving, never_started,"
                " created_at, updated_at, next_check_at, closed_at, closed_by)"
                " VALUES (?, ?, ?, 'deletion', 'U0ALICE', 'C0COMPLY', 'REJECTED', 0, 1, ?, ?, ?, ?, ?)",
                (number, f"ref-{number}", f"token-{number}", made, made, made, closed_by and made + DAY, closed_by),
            )
    with closing(sqlite3.connect(path)) as db:
        assert migrate(db) == VERSION
        rows = db.execute("SELECT id, outcome, denial_reason FROM requests ORDER BY id").fetchall()
    assert rows == [(1, "denied", "other"), (2, None, None)]
