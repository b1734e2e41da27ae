"""Engines and schema upgrades, for SQLite and PostgreSQL alike.

SQLite gets WAL (readers never block the writer: the dashboard reads while the recorder
writes) and a busy timeout (a second writer waits instead of failing). PostgreSQL gets a
connect timeout: without one, a database host that drops packets holds the recorder's writer,
a CLI command or a dashboard page for minutes. Every engine is upgraded to the newest Alembic
revision before use (unless told not to), so an old log file keeps working.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from store.schema.config import database_url

SQLITE_BUSY_TIMEOUT_MS = 10_000
#: Seconds; shorter than the recorder's default `exit_timeout`, so a hung connect cannot eat
#: the drain at exit. A `connect_timeout` in the URL's query wins.
POSTGRES_CONNECT_TIMEOUT = 5
#: Errors that mean "the database cannot be reached or opened right now" (server down, file
#: or folder not writable, pool exhausted) rather than "this statement or record is wrong".
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    OSError,
)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_UPGRADE_LOCK = threading.Lock()


def display_url(url: str | None = None) -> str:
    """The database URL (default: the configured one) with its password hidden, for messages."""
    return make_url(database_url(url)).render_as_string(hide_password=True)


def make_engine(url: str | None = None, *, upgrade: bool = True) -> Engine:
    """An engine for `url` (or the configured default), with the schema brought up to date."""
    url = database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            # A folder that cannot be made (read-only disk) is not fatal here: the first connect
            # fails with SQLite's own error, which each caller handles as a database it cannot
            # reach (the recorder spools, the CLI and the dashboard say so). A Recorder must not
            # raise into the caller's program from its constructor.
            with contextlib.suppress(OSError):
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        connect_args: dict[str, object] = {}
        if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT
        engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if upgrade:
        upgrade_schema(engine)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a commit is not an fsync
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade_schema(engine: Engine) -> None:
    """Apply every Alembic revision the database has not seen yet."""
    with _UPGRADE_LOCK:  # Streamlit sessions are threads; other processes: see env.py
        command.upgrade(alembic_config(engine), "head")
