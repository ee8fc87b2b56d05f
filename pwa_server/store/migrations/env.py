"""Alembic environment: runs on the connection that pwa_server.store.database hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from pwa_server.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    # Invoked through the alembic command line: the URL comes from -x url=...
    url = context.get_x_argument(as_dictionary=True)["url"]
    with create_engine(url).begin() as own_connection:
        context.configure(connection=own_connection, target_metadata=metadata)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
