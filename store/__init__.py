"""Persistence: aiosqlite, schema migrations, field encryption and the append-only audit log."""
