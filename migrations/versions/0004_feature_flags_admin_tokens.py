"""feature flags, config version, admin API tokens

Every plugin already installed gets its `plugin.<id>` flag, on, so upgrading changes nothing
agents see (a missing plugin flag means "off").

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 15:00:00.000000

"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

import cms.models.types


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    flags = op.create_table('feature_flags',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('rollout_percent', sa.Integer(), nullable=False),
    sa.Column('targeting', sa.JSON(), nullable=False),
    sa.Column('default', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', cms.models.types.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_feature_flags'))
    )
    versions = op.create_table('flag_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flag_versions'))
    )
    op.create_table('admin_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', cms.models.types.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', cms.models.types.UTCDateTime(), nullable=True),
    sa.Column('revoked_at', cms.models.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_admin_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_admin_tokens_token_hash'))
    )
    with op.batch_alter_table('admin_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_tokens_user_id'), ['user_id'], unique=False)

    installs = sa.table('plugin_installs', sa.column('plugin_id', sa.String))
    plugin_ids = [row.plugin_id for row in op.get_bind().execute(sa.select(installs.c.plugin_id))]
    now = datetime.now(timezone.utc)
    op.bulk_insert(flags, [
        {'key': f'plugin.{plugin_id}',
         'description': f'The {plugin_id} plugin: off hides it from every agent at once.',
         'kind': 'kill_switch', 'enabled': True, 'rollout_percent': 100,
         'targeting': {'agents': [], 'agencies': [], 'roles': []}, 'default': False,
         'version': 1, 'updated_at': now, 'updated_by': 'migration'}
        for plugin_id in plugin_ids
    ])
    op.bulk_insert(versions, [{'id': 1, 'version': 1 if plugin_ids else 0}])


def downgrade():
    with op.batch_alter_table('admin_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_tokens_user_id'))

    op.drop_table('admin_tokens')
    op.drop_table('flag_versions')
    op.drop_table('feature_flags')
