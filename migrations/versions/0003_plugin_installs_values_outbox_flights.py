"""plugin installs, versions, trusted keys, values, outbox, flights

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 14:08:28.611529

"""
from alembic import op
import sqlalchemy as sa

import cms.models.types


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('flights',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('carrier', sa.String(length=2), nullable=False),
    sa.Column('flight_number', sa.String(length=4), nullable=False),
    sa.Column('origin', sa.String(length=3), nullable=False),
    sa.Column('destination', sa.String(length=3), nullable=False),
    sa.Column('departure_date', sa.Date(), nullable=False),
    sa.Column('departs', sa.String(length=5), nullable=False),
    sa.Column('arrives', sa.String(length=5), nullable=False),
    sa.Column('seats', sa.JSON(), nullable=False),
    sa.Column('fares', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flights'))
    )
    with op.batch_alter_table('flights', schema=None) as batch_op:
        batch_op.create_index('ix_flights_route_date', ['origin', 'destination', 'departure_date'], unique=False)

    op.create_table('plugin_installs',
    sa.Column('plugin_id', sa.String(length=32), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('granted', sa.JSON(), nullable=False),
    sa.Column('canary_version', sa.String(length=64), nullable=True),
    sa.Column('canary_percent', sa.Integer(), nullable=False),
    sa.Column('previous_version', sa.String(length=64), nullable=True),
    sa.Column('updated_at', cms.models.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('plugin_id', name=op.f('pk_plugin_installs'))
    )
    op.create_table('plugin_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plugin_id', sa.String(length=32), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('manifest_text', sa.Text(), nullable=False),
    sa.Column('wasm', sa.LargeBinary(), nullable=False),
    sa.Column('vectors', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('signer_key_id', sa.String(length=16), nullable=True),
    sa.Column('uploaded_by', sa.String(length=80), nullable=True),
    sa.Column('created_at', cms.models.types.UTCDateTime(), nullable=False),
    sa.Column('gate_status', sa.String(length=12), nullable=False),
    sa.Column('gate_report', sa.JSON(), nullable=False),
    sa.Column('gate_override', sa.String(length=500), nullable=True),
    sa.Column('quarantined_at', cms.models.types.UTCDateTime(), nullable=True),
    sa.Column('quarantine_reason', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plugin_versions')),
    sa.UniqueConstraint('plugin_id', 'version', name='uq_plugin_versions')
    )
    with op.batch_alter_table('plugin_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plugin_versions_plugin_id'), ['plugin_id'], unique=False)
    op.create_table('trusted_keys',
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('public_key', sa.String(length=120), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('added_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', cms.models.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_trusted_keys'))
    )
    op.create_table('plugin_values',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plugin_id', sa.String(length=32), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=8), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('updated_at', cms.models.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_plugin_values_agency_id_agencies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plugin_values')),
    sa.UniqueConstraint('plugin_id', 'scope', 'owner_id', 'key', name='uq_plugin_values_key')
    )
    op.create_table('outbox_mails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('client_id', sa.Integer(), nullable=True),
    sa.Column('plugin_id', sa.String(length=32), nullable=False),
    sa.Column('to_addr', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.Column('created_at', cms.models.types.UTCDateTime(), nullable=False),
    sa.Column('sent_at', cms.models.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_outbox_mails_agency_id_agencies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_outbox_mails_client_id_clients'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_outbox_mails_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_mails'))
    )
    with op.batch_alter_table('outbox_mails', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_mails_agency_created', ['agency_id', 'created_at'], unique=False)




def downgrade():
    op.drop_table('trusted_keys')
    with op.batch_alter_table('plugin_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plugin_versions_plugin_id'))
    op.drop_table('plugin_versions')

    with op.batch_alter_table('outbox_mails', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_mails_agency_created')

    op.drop_table('outbox_mails')
    op.drop_table('plugin_values')
    op.drop_table('plugin_installs')
    with op.batch_alter_table('flights', schema=None) as batch_op:
        batch_op.drop_index('ix_flights_route_date')

    op.drop_table('flights')

