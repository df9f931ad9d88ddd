"""Alembic environment: migrations run on the connection that
:func:`needsled.web.migrate.upgrade` passes in (never from an ini file or the CLI)."""

from __future__ import annotations

from alembic import context

from needsled.web.db import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
