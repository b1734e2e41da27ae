import subprocess
import sys

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


def test_several_processes_opening_a_new_sqlite_log_at_once_all_succeed(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    opener = "import sys; from store.schema.db import make_engine; make_engine(sys.argv[1])"

    processes = [
        subprocess.Popen([sys.executable, "-c", opener, url], stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]

    failures = [p.stderr.read() for p in processes if p.wait(timeout=120) != 0]
    assert failures == []
    with make_engine(url).connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_the_default_data_folder_is_created(tmp_path, monkeypatch):
    home = tmp_path / "home" / "imagelog"
    monkeypatch.setenv("IMAGELOG_HOME", str(home))
    monkeypatch.delenv("IMAGELOG_DATABASE_URL", raising=False)

    make_engine().dispose()

    assert (home / "imagelog.db").is_file()
