"""Alembic environment: migrations run on the connection the store hands over
(config.attributes["connection"]); there is no alembic.ini and no offline mode."""
from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
