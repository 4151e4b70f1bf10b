"""agency names unique regardless of case

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('uq_agencies_name_lower', 'agencies', [sa.text('lower(name)')], unique=True)


def downgrade():
    op.drop_index('uq_agencies_name_lower', table_name='agencies')
