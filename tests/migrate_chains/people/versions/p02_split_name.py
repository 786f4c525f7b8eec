"""first_name and last_name, filled from full_name row by row (a data migration)"""

import sqlalchemy as sa
from alembic import op

revision = "p02_split_name"
down_revision = "p01_people"

people = sa.table("people", sa.column("id", sa.Integer), sa.column("full_name", sa.String),
                  sa.column("first_name", sa.String), sa.column("last_name", sa.String))


def upgrade() -> None:
    op.add_column("people", sa.Column("first_name", sa.String(50)))
    op.add_column("people", sa.Column("last_name", sa.String(50)))
    bind = op.get_bind()  # reads the rows: this revision runs online only
    for id_, full_name in bind.execute(sa.select(people.c.id, people.c.full_name)).all():
        first, _, last = full_name.strip().partition(" ")
        bind.execute(people.update().where(people.c.id == id_).values(first_name=first, last_name=last or None))


def downgrade() -> None:
    op.drop_column("people", "last_name")
    op.drop_column("people", "first_name")
