from sqlalchemy import inspect, text

from store.schema.db import make_engine


def test_a_new_database_is_upgraded_to_the_whole_schema(db_url):
    engine = make_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    assert {"generations", "images", "alembic_version"} <= tables
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_upgrading_twice_is_harmless(db_url):
    make_engine(db_url).dispose()
    engine = make_engine(db_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM generations")).scalar() == 0


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
