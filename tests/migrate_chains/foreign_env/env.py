"""Reads the app's settings, not alembic's: points wherever APP_DATABASE_URL says."""

import os

import sqlalchemy as sa
from alembic import context

engine = sa.create_engine(os.environ["APP_DATABASE_URL"], poolclass=sa.pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
