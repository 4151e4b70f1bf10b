"""admin token expiry

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 20:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import cms.models.types


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    # A nullable column: a plain ADD COLUMN on SQLite and PostgreSQL alike (no table copy).
    op.add_column('admin_tokens', sa.Column('expires_at', cms.models.types.UTCDateTime(),
                                            nullable=True))


def downgrade():
    op.drop_column('admin_tokens', 'expires_at')
