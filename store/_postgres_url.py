"""What the rest of the bot needs to know about a PostgreSQL URL, without loading PostgreSQL's driver.

psycopg, its pool and libpq take a good share of a process's memory the moment they are imported
(benchmarks/README.md, "Peak RSS"); a bot on SQLite (the default) never needs them. So the modules that talk
to PostgreSQL (store/_postgres.py, _leader.py, _request_locks.py) import psycopg only when a PostgreSQL URL is
in use, and these helpers, which every bot calls, import nothing of it until they are given such a URL.
"""

from __future__ import annotations

__all__ = ["is_postgres_url", "where_shown"]


def is_postgres_url(where: object) -> bool:
    """``where`` names a PostgreSQL database (``DATABASE_URL``) rather than a SQLite file."""
    return isinstance(where, str) and where.startswith(("postgresql://", "postgres://"))


def where_shown(url: str) -> str:
    """``url`` as it may be shown or logged: host, port and database, never the user's password."""
    import psycopg.conninfo  # a PostgreSQL URL: its driver is in use anyway

    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an unreadable URL)"
    host = parts.get("host") or "localhost"
    return f"{parts.get('dbname') or parts.get('user') or ''} on {host}:{parts.get('port') or 5432}"
