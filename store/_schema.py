"""Schema migrations, keyed on ``PRAGMA user_version``.

Each entry moves the database one version up and runs in its own transaction,
so a crash mid-migration leaves the previous version intact. Append new
entries; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3

from core import ConfigError

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS: tuple[str, ...] = (
    # 1: requests, the event inbox, the Slack outbox and the audit log.
    """
    CREATE TABLE requests (
        id            INTEGER PRIMARY KEY,
        client_token  TEXT    NOT NULL UNIQUE,
        email_hash    BLOB,
        email_sealed  BLOB,
        email_masked  TEXT,
        requester     TEXT    NOT NULL,
        channel       TEXT    NOT NULL,
        thread_ts     TEXT,
        task_id       TEXT    UNIQUE,
        status        TEXT    NOT NULL,
        errors        TEXT    NOT NULL DEFAULT '[]',
        created_at    REAL    NOT NULL,
        updated_at    REAL    NOT NULL,
        next_check_at REAL    NOT NULL
    );
    CREATE INDEX requests_by_email ON requests (email_hash);
    CREATE INDEX requests_unfinished ON requests (next_check_at)
        WHERE status IN ('NEW', 'STARTING', 'IN_PROGRESS');

    CREATE TABLE inbox (
        event_id     TEXT PRIMARY KEY,
        event_type   TEXT NOT NULL,
        task_id      TEXT NOT NULL,
        received_at  REAL NOT NULL,
        processed_at REAL
    );
    CREATE INDEX inbox_pending ON inbox (task_id) WHERE processed_at IS NULL;

    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        request_id      INTEGER NOT NULL REFERENCES requests (id),
        method          TEXT    NOT NULL,
        payload         TEXT    NOT NULL,
        created_at      REAL    NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL    NOT NULL,
        last_error      TEXT,
        sent_at         REAL,
        gave_up_at      REAL
    );
    CREATE INDEX outbox_pending ON outbox (request_id, id) WHERE sent_at IS NULL AND gave_up_at IS NULL;

    CREATE TABLE audit (
        id         INTEGER PRIMARY KEY,
        at         REAL    NOT NULL,
        request_id INTEGER REFERENCES requests (id),
        actor      TEXT    NOT NULL,
        action     TEXT    NOT NULL,
        detail     TEXT    NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_by_request ON audit (request_id);
    CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    # 2: compliance cases — a due date per request, reminders sent, who closed it, when its email was purged.
    """
    ALTER TABLE requests ADD COLUMN due_at REAL;
    ALTER TABLE requests ADD COLUMN deadline TEXT NOT NULL DEFAULT '';
    ALTER TABLE requests ADD COLUMN reminders_sent TEXT NOT NULL DEFAULT '';
    ALTER TABLE requests ADD COLUMN closed_at REAL;
    ALTER TABLE requests ADD COLUMN closed_by TEXT;
    ALTER TABLE requests ADD COLUMN purged_at REAL;
    UPDATE requests SET due_at = created_at + 30 * 86400, deadline = '30 days';
    CREATE INDEX requests_open_cases ON requests (due_at) WHERE closed_at IS NULL;
    CREATE INDEX audit_by_time ON audit (at);
    """,
    # 3: the actor's Slack name beside their id, as Slack sent it with the action, so an auditor reads people.
    """
    ALTER TABLE audit ADD COLUMN actor_name TEXT NOT NULL DEFAULT '';
    """,
    # 4: per-item backoff (a failing request or event waits on its own schedule), and what the
    # thread was told while Buy with Prime was unavailable, and when a start may first have reached it.
    """
    ALTER TABLE requests ADD COLUMN check_failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE requests ADD COLUMN waiting_since REAL;
    ALTER TABLE requests ADD COLUMN start_sent_at REAL;
    ALTER TABLE inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE inbox ADD COLUMN next_attempt_at REAL NOT NULL DEFAULT 0;
    """,
    # 5: the key check — a constant sealed under the database's key, so a wrong key is refused at start.
    """
    CREATE TABLE key_check (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        sealed      BLOB    NOT NULL,
        fingerprint TEXT    NOT NULL,
        recorded_at REAL    NOT NULL
    );
    """,
    # 6: what an outbox entry is for: "thread" opens a request's thread (its ts becomes the thread's),
    # "notice" tells the requester directly that a thread post was abandoned; "" is any other post.
    """
    ALTER TABLE outbox ADD COLUMN purpose TEXT NOT NULL DEFAULT '';
    """,
    # 7: a request has a kind (every earlier one is a retrieval) and the kind's own inputs, as JSON; a
    # duplicate is looked for among the same shopper's requests of the same kind, so the index says both.
    """
    ALTER TABLE requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'retrieval';
    ALTER TABLE requests ADD COLUMN params TEXT NOT NULL DEFAULT '{}';
    CREATE INDEX requests_by_email_kind ON requests (email_hash, kind);
    DROP INDEX requests_by_email;
    """,
    # 8: erasures — who approved (the second person), when Amazon's hold ends, who cancelled; a request
    # waiting for approval is not polled, so the reconciler's index holds only the statuses that move.
    """
    ALTER TABLE requests ADD COLUMN approved_by TEXT;
    ALTER TABLE requests ADD COLUMN approved_at REAL;
    ALTER TABLE requests ADD COLUMN hold_ends_at REAL;
    ALTER TABLE requests ADD COLUMN cancelled_by TEXT;
    ALTER TABLE requests ADD COLUMN cancelled_at REAL;
    DROP INDEX requests_unfinished;
    CREATE INDEX requests_unfinished ON requests (next_check_at)
        WHERE status IN ('NEW', 'STARTING', 'ON_HOLD', 'IN_PROGRESS');
    """,
    # 9: years of history stay fast (issue 14). Every command reads a page through an index, never a scan:
    # open cases by due date (the team's list, the Home tab) and by requester (your list); reminders only
    # among cases with one still to send (reminders_done is set once the last has gone); the reconciler's
    # unfinished requests oldest first; retention's candidates by the time they ended; an outbox row by
    # its request (purge empties the sent ones). The partial indexes' WHERE clauses are the store's queries'
    # own (store/_rows.py OPEN_CASE, MOVING_SQL); tests/test_query_plans.py checks each query uses them.
    """
    ALTER TABLE requests ADD COLUMN reminders_done INTEGER NOT NULL DEFAULT 0;
    UPDATE requests SET reminders_done = 1 WHERE ',' || reminders_sent || ',' LIKE '%,overdue,%';
    CREATE INDEX requests_open_by_due ON requests (due_at, id)
        WHERE closed_at IS NULL AND status NOT IN ('REJECTED', 'ABANDONED');
    CREATE INDEX requests_open_by_requester ON requests (requester, due_at, id)
        WHERE closed_at IS NULL AND status NOT IN ('REJECTED', 'ABANDONED');
    CREATE INDEX requests_to_remind ON requests (due_at)
        WHERE closed_at IS NULL AND status NOT IN ('REJECTED', 'ABANDONED') AND reminders_done = 0
        AND thread_ts IS NOT NULL;
    DROP INDEX requests_open_cases;
    CREATE INDEX requests_unfinished_by_age ON requests (created_at, id)
        WHERE status IN ('NEW', 'STARTING', 'ON_HOLD', 'IN_PROGRESS');
    CREATE INDEX requests_to_purge ON requests (COALESCE(closed_at, updated_at)) WHERE purged_at IS NULL;
    CREATE INDEX outbox_by_request ON outbox (request_id);
    """,
    # 10: what a scrape, a health check or a reminder pass reads stays the same size as history grows
    # (issue 14). Counts by kind, status and closed are kept as requests change (triggers), so /metrics
    # no longer groups every request ever made (91 ms at 100,000 cases, on the one connection every
    # command waits for) and the open and unfinished totals are sums of a few rows, not counts of every
    # open case; given-up posts have their own index, so /readyz no longer scans every post ever sent;
    # remind_at is when a case's next reminder may be due (NULL: none left), so a pass reads the cases
    # due now, not every case with a reminder still to come. 0 means "look now": the first pass after
    # this upgrade sets each open case's next time from the schedule, which lives in the code.
    """
    CREATE TABLE request_counts (
        kind   TEXT    NOT NULL,
        status TEXT    NOT NULL,
        closed INTEGER NOT NULL,  -- 1 once staff closed the case (closed_at set)
        count  INTEGER NOT NULL,
        PRIMARY KEY (kind, status, closed)
    ) WITHOUT ROWID;
    INSERT INTO request_counts (kind, status, closed, count)
        SELECT kind, status, closed_at IS NOT NULL, COUNT(*) FROM requests GROUP BY 1, 2, 3;
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
    CREATE INDEX outbox_gave_up ON outbox (id) WHERE gave_up_at IS NOT NULL;
    ALTER TABLE requests ADD COLUMN remind_at REAL;
    UPDATE requests SET remind_at = 0
        WHERE closed_at IS NULL AND status NOT IN ('REJECTED', 'ABANDONED') AND reminders_done = 0;
    CREATE INDEX requests_remind_at ON requests (remind_at)
        WHERE closed_at IS NULL AND status NOT IN ('REJECTED', 'ABANDONED') AND remind_at IS NOT NULL
        AND thread_ts IS NOT NULL;
    DROP INDEX requests_to_remind;
    """,
    # 11: a random reference per request, which its buttons carry beside its id. A database restored from a
    # backup hands the ids of the requests made after that backup out again, while their threads (and buttons)
    # stay in Slack; a reference is never handed out twice, so such a button names no case. Rows from before
    # this version get one here; the store gives each new request its own (``Requests.create``).
    """
    ALTER TABLE requests ADD COLUMN ref TEXT NOT NULL DEFAULT '';
    UPDATE requests SET ref = lower(hex(randomblob(12)));
    """,
    # 12: when a cancel of a held task may first have reached Amazon, its answer not known yet: only then is
    # Amazon's "not found" to a later cancel the sign that the earlier one took.
    """
    ALTER TABLE requests ADD COLUMN cancel_sent_at REAL;
    """,
)


def migrate(db: sqlite3.Connection) -> int:
    """Bring the database up to the newest version; return that version."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise ConfigError(
            f"the database is at schema version {version}, newer than this bot knows ({len(MIGRATIONS)}): "
            "run the newer bot, or restore a backup"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        try:
            db.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        except BaseException:
            if db.in_transaction:
                db.rollback()
            raise
    return len(MIGRATIONS)
