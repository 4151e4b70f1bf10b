"""outbox: deliver after the undo window, retry a relay that is down

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 23:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import cms.models.types


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable: older rows (and mail queued without a relay) have none and stay in the outbox,
    # as before; a plain ADD COLUMN on SQLite and PostgreSQL alike. The courier finds due mail
    # by status and this time.
    op.add_column('outbox_mails', sa.Column('deliver_after', cms.models.types.UTCDateTime(),
                                            nullable=True))
    op.add_column('outbox_mails', sa.Column('attempts', sa.Integer(), nullable=False,
                                            server_default='0'))
    op.create_index('ix_outbox_mails_status_deliver_after', 'outbox_mails',
                    ['status', 'deliver_after'])


def downgrade():
    op.drop_index('ix_outbox_mails_status_deliver_after', table_name='outbox_mails')
    op.drop_column('outbox_mails', 'attempts')
    op.drop_column('outbox_mails', 'deliver_after')
