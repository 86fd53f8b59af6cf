"""Alembic environment: migrations run against the URL `store.migrate` puts in the config."""

from __future__ import annotations

from alembic import context

from store.db import make_engine
from store.tables import declared, declared_in, metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None, "store.migrate.alembic_config sets sqlalchemy.url"

engine = make_engine(url)
try:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            include_name=declared,
            include_object=declared_in(connection.dialect.name),
            render_as_batch=connection.dialect.name == "sqlite",
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
