"""Durable storage behind one journal interface: SQLite (embedded default) and PostgreSQL (scale-out) with its migrations."""
