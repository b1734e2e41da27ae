"""Fixtures shared by every test: a fresh database on SQLite and on PostgreSQL.

`db_url` is parametrized: each store test runs once on a new SQLite file and once on a new
PostgreSQL schema (so parallel runs and helpers never see each other's rows). PostgreSQL comes
from `IMAGELOG_TEST_POSTGRES_URL` (CI sets it), default the local server's `test` database.

The stand-in hosts listen on loopback, which the network guard refuses to fetch from, so the
whole session opts loopback in (`LOOPBACK_OPT_IN`); tests/test_network_guard.py drops it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, create_engine, text

from store import Recorder
from store.media.network_guard import ALLOWED_NETWORKS_ENV
from store.schema.db import make_engine
from tests.standins import image_host as image_host_routes
from tests.standins.openai_server import OpenAIStandIn
from tests.standins.portkey_gateway import PortkeyStandIn
from tests.standins.s3 import S3StandIn
from tests.standins.server import LoopbackServer
from tests.standins.signed_host import SignedHost

POSTGRES_URL = os.environ.get(
    "IMAGELOG_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: What the session lets server-side fetches reach: the loopback stand-ins, and nothing else.
LOOPBACK_OPT_IN = "127.0.0.0/8,::1/128"


@pytest.fixture(scope="session", autouse=True)
def loopback_opt_in() -> Iterator[None]:
    """`IMAGELOG_ALLOWED_NETWORKS` for the loopback stand-ins, in this process and the commands
    and servers it starts."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ALLOWED_NETWORKS_ENV, LOOPBACK_OPT_IN)
        yield


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # the suite must say why, not skip silently
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    yield engine
    engine.dispose()


def _postgres_schema_url(admin: Engine, schema: str) -> str:
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    """A URL to an empty database (no schema yet), on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'imagelog.db'}"
        return
    admin = request.getfixturevalue("postgres_admin")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield _postgres_schema_url(admin, schema)
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def fresh_db_url(request, tmp_path) -> Iterator[Callable[[str], str]]:
    """`fresh_db_url("sqlite" | "postgresql")`: a URL to one more empty database, for tests
    that move a log from one database to another."""
    schemas: list[str] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'fresh-{uuid.uuid4().hex[:8]}.db'}"
        schemas.append(f"t_{uuid.uuid4().hex[:12]}")
        return _postgres_schema_url(request.getfixturevalue("postgres_admin"), schemas[-1])

    yield make
    for schema in schemas:
        with request.getfixturevalue("postgres_admin").connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def engine(db_url) -> Iterator[Engine]:
    """An engine on `db_url` with the schema upgraded to head."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def empty_log(db_url, monkeypatch) -> Iterator[Engine]:
    """An empty log the dashboard is pointed at (tests/test_app.py and the other AppTest
    files); the app's caches start cold."""
    import streamlit as st

    monkeypatch.setenv("IMAGELOG_DATABASE_URL", db_url)
    st.cache_data.clear()
    engine = make_engine(db_url)
    yield engine
    st.cache_data.clear()
    st.cache_resource.clear()
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """For tests that are about SQLite itself (the file, WAL, FTS5)."""
    return f"sqlite:///{tmp_path / 'imagelog.db'}"


@pytest.fixture(scope="session")
def image_host() -> Iterator[LoopbackServer]:
    """The loopback image host of tests/standins/image_host.py (images, errors, broken hosts)."""
    with LoopbackServer(image_host_routes.route) as server:
        yield server


@pytest.fixture(scope="session")
def openai_api() -> Iterator[OpenAIStandIn]:
    """The loopback OpenAI-compatible images API of tests/standins/openai_server.py."""
    with OpenAIStandIn() as api:
        yield api


@pytest.fixture(scope="session")
def portkey_api() -> Iterator[PortkeyStandIn]:
    """The loopback Portkey gateway of tests/standins/portkey_gateway.py, in front of an
    OpenAI stand-in of its own."""
    with PortkeyStandIn() as portkey:
        yield portkey


@pytest.fixture
def recorder(db_url, tmp_path) -> Iterator[Recorder]:
    """A Recorder on `db_url` with its own spool, retrying an absent database every 0.2 s."""
    recorder = Recorder(db_url, spool_path=tmp_path / "spool.jsonl", retry_interval=0.2)
    yield recorder
    recorder.close(timeout=30)


@pytest.fixture(scope="session")
def host_server() -> Iterator[SignedHost]:
    """The loopback signed-URL host of tests/standins/signed_host.py, one per session."""
    with SignedHost() as host:
        yield host


@pytest.fixture
def host(host_server: SignedHost) -> SignedHost:
    """The signed-URL host with its per-test state (requests seen, toggles) cleared."""
    host_server.reset()
    return host_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3StandIn]:
    """moto's S3 server on loopback, one per session, with this process's S3 clients (and the
    commands it starts) pointed at it through the AWS_* environment, as a team's would be."""
    with S3StandIn() as s3, pytest.MonkeyPatch.context() as patch:
        for name, value in s3.environment().items():
            patch.setenv(name, value)
        yield s3


@pytest.fixture
def s3_bucket(s3_server: S3StandIn) -> str:
    """A new, empty bucket on the S3 stand-in, its request counts reset."""
    bucket = s3_server.new_bucket()
    s3_server.reset_counts()
    return bucket


@pytest.fixture(params=["s3", "folder"])
def archive_location(request, tmp_path) -> str:
    """An archive location on each kind of store in turn: a bucket's prefix on the S3
    stand-in, and a local folder."""
    if request.param == "folder":
        return str(tmp_path / "originals")
    return f"s3://{request.getfixturevalue('s3_bucket')}/originals"
