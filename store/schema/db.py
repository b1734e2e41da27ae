"""Engines and schema upgrades, for SQLite and PostgreSQL alike.

SQLite gets WAL (readers never block the writer: the dashboard reads while the recorder
writes) and a busy timeout (a second writer waits instead of failing). PostgreSQL gets a
connect timeout: without one, a database host that drops packets holds the recorder's writer,
a CLI command or a dashboard page for minutes. Every engine is upgraded to the newest Alembic
revision before use (unless told not to), so an old log file keeps working.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from store.schema.config import database_url, default_data_dir

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


class MissingFolder(OSError):
    """A SQLite file was asked for in a folder that does not exist (a typo, most often)."""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def make_engine(url: str | None = None, *, upgrade: bool = True) -> Engine:
    """An engine for `url` (or the configured default), with the schema brought up to date.

    Only the default data folder is created: a SQLite path in a folder that does not exist is
    refused with a clear error at connect time, not taken as a wish for a new folder tree.
    Connecting is what fails (never this call), so a Recorder never raises into the caller's
    program from its constructor: it spools until the folder exists.
    """
    url = database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        if (path := sqlite_file(url)) is not None:
            if path.parent.resolve() == default_data_dir().resolve():
                with contextlib.suppress(OSError):  # a read-only home fails at connect instead
                    path.parent.mkdir(parents=True, exist_ok=True)
            event.listen(engine, "do_connect", _folder_must_exist(path))
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        connect_args: dict[str, object] = {}
        if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT
        engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if upgrade:
        upgrade_schema(engine)
    return engine


def _folder_must_exist(path: Path) -> Callable[..., None]:
    def check(*_args: object) -> None:
        if not path.parent.is_dir():
            raise MissingFolder(
                f"the folder {path.parent} does not exist; create it, or use another path "
                "(imagelog creates only its default folder)"
            )

    return check


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
    """Apply every Alembic revision the database has not seen yet.

    Streamlit sessions are threads (`_UPGRADE_LOCK`); other processes wait on an advisory
    lock on PostgreSQL (env.py) and on a lock file beside a SQLite file, so several programs
    opening a new log at once upgrade it one after another.
    """
    with _UPGRADE_LOCK, _sqlite_upgrade_lock(engine):
        command.upgrade(alembic_config(engine), "head")


@contextlib.contextmanager
def _sqlite_upgrade_lock(engine: Engine) -> Iterator[None]:
    """An exclusive flock on `<database>.upgrade-lock` (not on the database file itself:
    closing any descriptor of it would drop the POSIX locks SQLite holds in this process)."""
    path = sqlite_file(engine.url.render_as_string(hide_password=False))
    if path is None or not path.parent.is_dir():
        yield  # nothing to share, or the connect that follows says what is wrong
        return
    with open(path.with_name(path.name + ".upgrade-lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
