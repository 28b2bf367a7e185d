"""The schema, keyed on ``PRAGMA user_version``.

``BASELINE`` is the first release's schema, created whole in one transaction. A later change
appends a script to ``MIGRATIONS``; each moves the database one version up in its own
transaction, so a crash mid-migration leaves the previous version intact. A database below the
baseline (a development build's) is refused in one line, as is one newer than this bot knows.

What a status means for the shared steps (moving, never started) is written by the store as
columns beside ``status`` (store/_rows.py ``status_columns``), from RequestStatus's own
properties, so the partial indexes name those columns and a new status needs no migration.
"""

from __future__ import annotations

import sqlite3

from core import ConfigError
from store._chain import entry_hash

__all__ = ["BASELINE_VERSION", "MIGRATIONS", "VERSION", "migrate"]

BASELINE_VERSION = 13  # versions below it were never released

BASELINE = """
CREATE TABLE requests (
    id             INTEGER PRIMARY KEY,
    ref            TEXT    NOT NULL,  -- random, never handed out twice: a button carries it beside the id
    client_token   TEXT    NOT NULL UNIQUE,
    kind           TEXT    NOT NULL,
    params         TEXT    NOT NULL DEFAULT '{}',  -- the kind's own inputs, JSON
    email_hash     BLOB,
    email_sealed   BLOB,
    email_masked   TEXT,
    requester      TEXT    NOT NULL,
    channel        TEXT    NOT NULL,
    thread_ts      TEXT,
    task_id        TEXT    UNIQUE,
    status         TEXT    NOT NULL,
    moving         INTEGER NOT NULL,  -- RequestStatus.moving, written with status
    never_started  INTEGER NOT NULL,  -- RequestStatus.never_started, written with status
    errors         TEXT    NOT NULL DEFAULT '[]',
    created_at     REAL    NOT NULL,
    updated_at     REAL    NOT NULL,
    next_check_at  REAL    NOT NULL,
    check_failures INTEGER NOT NULL DEFAULT 0,
    waiting_since  REAL,
    start_sent_at  REAL,  -- a start may have reached Amazon from then on
    due_at         REAL,
    deadline       TEXT    NOT NULL DEFAULT '',
    reminders_sent TEXT    NOT NULL DEFAULT '',
    remind_at      REAL,  -- when the next reminder may be due; NULL: none left
    closed_at      REAL,
    closed_by      TEXT,
    purged_at      REAL,
    approved_by    TEXT,
    approved_at    REAL,
    hold_ends_at   REAL,
    cancelled_by   TEXT,
    cancelled_at   REAL,
    cancel_sent_at REAL   -- a cancel of a held task may have reached Amazon from then on
);
CREATE INDEX requests_by_email_kind ON requests (email_hash, kind);
CREATE INDEX requests_unfinished ON requests (next_check_at) WHERE moving = 1;
CREATE INDEX requests_unfinished_by_age ON requests (created_at, id) WHERE moving = 1;
CREATE INDEX requests_open_by_due ON requests (due_at, id) WHERE closed_at IS NULL AND never_started = 0;
CREATE INDEX requests_open_by_requester ON requests (requester, due_at, id)
    WHERE closed_at IS NULL AND never_started = 0;
CREATE INDEX requests_remind_at ON requests (remind_at)
    WHERE closed_at IS NULL AND never_started = 0 AND remind_at IS NOT NULL AND thread_ts IS NOT NULL;
CREATE INDEX requests_to_purge ON requests (COALESCE(closed_at, updated_at)) WHERE purged_at IS NULL;

-- Counts by kind, status and closed, kept as requests change: a scrape reads a few rows, not every request.
CREATE TABLE request_counts (
    kind   TEXT    NOT NULL,
    status TEXT    NOT NULL,
    closed INTEGER NOT NULL,  -- 1 once staff closed the case (closed_at set)
    count  INTEGER NOT NULL,
    PRIMARY KEY (kind, status, closed)
) WITHOUT ROWID;
CREATE TRIGGER request_counts_insert AFTER INSERT ON requests BEGIN
    INSERT INTO request_counts (kind, status, closed, count)
        VALUES (NEW.kind, NEW.status, NEW.closed_at IS NOT NULL, 1)
        ON CONFLICT (kind, status, closed) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER request_counts_move AFTER UPDATE OF kind, status, closed_at ON requests
    WHEN OLD.kind IS NOT NEW.kind OR OLD.status IS NOT NEW.status
        OR (OLD.closed_at IS NULL) IS NOT (NEW.closed_at IS NULL) BEGIN
    UPDATE request_counts SET count = count - 1
        WHERE kind = OLD.kind AND status = OLD.status AND closed = (OLD.closed_at IS NOT NULL);
    INSERT INTO request_counts (kind, status, closed, count)
        VALUES (NEW.kind, NEW.status, NEW.closed_at IS NOT NULL, 1)
        ON CONFLICT (kind, status, closed) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER request_counts_delete AFTER DELETE ON requests BEGIN
    UPDATE request_counts SET count = count - 1
        WHERE kind = OLD.kind AND status = OLD.status AND closed = (OLD.closed_at IS NOT NULL);
END;

CREATE TABLE inbox (
    event_id        TEXT    PRIMARY KEY,
    event_type      TEXT    NOT NULL,
    task_id         TEXT    NOT NULL,
    received_at     REAL    NOT NULL,
    processed_at    REAL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL    NOT NULL DEFAULT 0
);
CREATE INDEX inbox_pending ON inbox (task_id) WHERE processed_at IS NULL;

-- purpose: "thread" opens a request's thread (its ts becomes the thread's), "notice" tells the requester
-- directly that a thread post was abandoned; "" is any other post.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    request_id      INTEGER NOT NULL REFERENCES requests (id),
    method          TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    purpose         TEXT    NOT NULL DEFAULT '',
    created_at      REAL    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL    NOT NULL,
    last_error      TEXT,
    sent_at         REAL,
    gave_up_at      REAL
);
CREATE INDEX outbox_pending ON outbox (request_id, id) WHERE sent_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX outbox_by_request ON outbox (request_id);
CREATE INDEX outbox_gave_up ON outbox (id) WHERE gave_up_at IS NOT NULL;

CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    at         REAL    NOT NULL,
    request_id INTEGER REFERENCES requests (id),
    actor      TEXT    NOT NULL,
    actor_name TEXT    NOT NULL DEFAULT '',  -- the Slack name sent with the action, so an auditor reads people
    action     TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_request ON audit (request_id);
CREATE INDEX audit_by_time ON audit (at);
CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- A constant sealed under the database's key, so a wrong key is refused at start.
CREATE TABLE key_check (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    sealed      BLOB    NOT NULL,
    fingerprint TEXT    NOT NULL,
    recorded_at REAL    NOT NULL
);
"""

# The audit log becomes a hash chain (store/_chain.py): every entry gets the hash of the one before it and
# its own, the entries already written chained in id order. The append-only trigger steps aside for this
# one update, in the migration's own transaction.
AUDIT_CHAIN = """
ALTER TABLE audit ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN hash TEXT NOT NULL DEFAULT '';
CREATE TEMP TABLE audit_chain AS
    WITH RECURSIVE chain (id, prev_hash, hash) AS (
        SELECT id, '', audit_entry_hash(id, at, request_id, actor, actor_name, action, detail, '')
            FROM audit WHERE id = (SELECT MIN(id) FROM audit)
        UNION ALL
        SELECT a.id, c.hash,
               audit_entry_hash(a.id, a.at, a.request_id, a.actor, a.actor_name, a.action, a.detail, c.hash)
            FROM chain c JOIN audit a ON a.id = (SELECT MIN(id) FROM audit WHERE id > c.id)
    )
    SELECT id, prev_hash, hash FROM chain;
DROP TRIGGER audit_is_append_only_update;
UPDATE audit SET prev_hash = c.prev_hash, hash = c.hash FROM temp.audit_chain c WHERE c.id = audit.id;
CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
DROP TABLE temp.audit_chain;
"""

# Each moves the database from BASELINE_VERSION + n to BASELINE_VERSION + n + 1. Append; never edit one that shipped.
MIGRATIONS: tuple[str, ...] = (
    # 14: the compliance record. A case made before it was received the day it was made, how and by whom it
    # was verified is unknown, and a case closed before it complied (closing was the only way to answer).
    """
    ALTER TABLE requests ADD COLUMN received_on TEXT;  -- YYYY-MM-DD, the day the shopper asked (UTC)
    ALTER TABLE requests ADD COLUMN received_via TEXT;  -- core.ReceivedVia; NULL: not recorded
    ALTER TABLE requests ADD COLUMN outside_ref TEXT;  -- staff's ticket reference, plain text, at most 64 characters
    ALTER TABLE requests ADD COLUMN verified_by TEXT;
    ALTER TABLE requests ADD COLUMN verified_how TEXT;  -- core.VerificationMethod
    ALTER TABLE requests ADD COLUMN verified_at REAL;
    ALTER TABLE requests ADD COLUMN verified_note_sealed BLOB;  -- staff's free text, sealed; erased by retention
    ALTER TABLE requests ADD COLUMN outcome TEXT;  -- core.Outcome, set when the case is closed
    ALTER TABLE requests ADD COLUMN denial_reason TEXT;  -- core.DenialReason, when the outcome is "denied"
    ALTER TABLE requests ADD COLUMN outcome_note_sealed BLOB;  -- staff's free text, sealed; erased by retention
    ALTER TABLE requests ADD COLUMN extension_told_at REAL;  -- the shopper was told of the extension then
    UPDATE requests SET received_on = date(created_at, 'unixepoch');
    UPDATE requests SET outcome = 'complied' WHERE closed_at IS NOT NULL;
    CREATE INDEX requests_by_outside_ref ON requests (outside_ref) WHERE outside_ref IS NOT NULL;
    CREATE INDEX requests_by_received_on ON requests (received_on, id);
    """,
    # 15: outcomes kept by the bot. An erasure staff rejected before its approval was denied (for a reason of
    # their own words, kept in its params), not complied with; the Home tab lists a requester's answered cases,
    # newest first, from an index of closed cases.
    """
    UPDATE requests SET outcome = 'denied', denial_reason = 'other'
        WHERE status = 'REJECTED' AND closed_at IS NOT NULL;
    CREATE INDEX requests_answered_by_requester ON requests (requester, closed_at) WHERE closed_at IS NOT NULL;
    """,
    # 16: the audit log's hash chain (AUDIT_CHAIN above).
    AUDIT_CHAIN,
    # 17: claims, so several copies of the bot sharing one database (PostgreSQL) send each post and act on each
    # event once: a copy takes a row until ``claimed_until`` (a lease that a dead copy's claim outlives).
    """
    ALTER TABLE outbox ADD COLUMN claimed_until REAL;
    ALTER TABLE inbox ADD COLUMN claimed_until REAL;
    """,
)

VERSION = BASELINE_VERSION + len(MIGRATIONS)


def _run(db: sqlite3.Connection, script: str, version: int) -> None:
    try:
        db.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
    except BaseException:
        if db.in_transaction:
            db.rollback()
        raise


def migrate(db: sqlite3.Connection) -> int:
    """Create the schema in a new database, or bring this one up to the newest version; return that version."""
    db.create_function("audit_entry_hash", 8, entry_hash, deterministic=True)  # for AUDIT_CHAIN
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > VERSION:
        raise ConfigError(
            f"the database is at schema version {version}, newer than this bot knows ({VERSION}): "
            "run the newer bot, or restore a backup"
        )
    if version == 0:
        if db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None:
            raise ConfigError("DATABASE_PATH: the file holds tables but no schema version: not this bot's database")
        _run(db, BASELINE, BASELINE_VERSION)
        version = BASELINE_VERSION
    elif version < BASELINE_VERSION:
        raise ConfigError(
            f"DATABASE_PATH: the database is at schema version {version}, from a development build before the "
            f"first release ({BASELINE_VERSION}); start with a new DATABASE_PATH"
        )
    for number, script in enumerate(MIGRATIONS[version - BASELINE_VERSION :], start=version + 1):
        _run(db, script, number)
    return VERSION
