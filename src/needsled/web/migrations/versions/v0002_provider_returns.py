"""Provider returns in the store, and providers' codes: ``users.provider`` (the code in the
models' directory tables) and the ``provider_returns`` table (one row per provider, service,
area and quarter of a model, with its counts).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from needsled.web.db import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # a new column that may be empty: a plain ALTER TABLE on both SQLite and PostgreSQL
    op.add_column("users", sa.Column("provider", sa.String(40), nullable=True))
    op.create_table(
        "provider_returns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "organisation_id",
            sa.Integer(),
            sa.ForeignKey("organisations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "model_id", sa.Integer(), sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("service", sa.String(40), nullable=False),
        sa.Column("area", sa.String(40), nullable=False),
        sa.Column("quarter", sa.String(7), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column(
            "uploaded_by_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.Column("replaced", sa.Integer(), nullable=False),
        sa.UniqueConstraint(
            "model_id", "provider", "service", "area", "quarter", name="uq_provider_returns_key"
        ),
    )
    op.create_index("ix_provider_returns_organisation_id", "provider_returns", ["organisation_id"])
    op.create_index("ix_provider_returns_model_id", "provider_returns", ["model_id"])


def downgrade() -> None:
    op.drop_index("ix_provider_returns_model_id", "provider_returns")
    op.drop_index("ix_provider_returns_organisation_id", "provider_returns")
    op.drop_table("provider_returns")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite 3.35+ drops a column in place. Not Alembic's batch mode: it would copy the
        # users table and drop the old one, and with foreign keys on, dropping it deletes
        # every user's sessions, tokens and scenarios' owners through their foreign keys.
        op.execute("ALTER TABLE users DROP COLUMN provider")
    else:
        op.drop_column("users", "provider")
