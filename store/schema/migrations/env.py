"""Alembic runs here with the engine `store.schema.db.upgrade_schema` hands it (no alembic.ini)."""

from alembic import context
from sqlalchemy import text

from store.schema.models import SQLModel, is_compared

# Any number of dashboard replicas and recorders may start at once against one PostgreSQL;
# this lock makes them upgrade one after another instead of racing to create the same table.
PG_MIGRATION_LOCK_KEY = 7_112_024


def run_migrations_online() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY}
            )
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=SQLModel.metadata,
                include_object=is_compared(connection.dialect.name),
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": PG_MIGRATION_LOCK_KEY}
                )
                connection.commit()


run_migrations_online()
