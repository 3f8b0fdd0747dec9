"""Alembic environment: migrations run on the connection `rungs.store.db.upgrade` passes in."""

from alembic import context

from rungs.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
