"""Alembic migrations of the web store (run by :func:`needsled.web.migrate.upgrade`)."""
