"""Real servers for integration tests: a fresh PostgreSQL schema, an S3 (moto) server, free ports.

Each helper skips the test, saying which server is unreachable, rather than failing on a machine
without it; in CI all of them are there and the tests run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, make_url, pool, text
from sqlalchemy.exc import OperationalError

from shared.db.session import get_engine

POSTGRES_URL = os.environ.get("CTRIAGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

_MOTO_SERVER = """
import logging, sys
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on the test output
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server._server.server_port, flush=True)
sys.stdin.read()  # runs until the test closes our stdin
server.stop()
"""


def free_port() -> int:
    """A TCP port free on loopback right now (so parallel runs do not collide on defaults)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres_schema(prefix: str = "ctriage_test") -> Iterator[str]:
    """A database URL whose ``search_path`` is a new schema of the test database, dropped afterwards."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool, connect_args={"connect_timeout": 3})
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        pytest.skip(f"PostgreSQL server unreachable at {make_url(POSTGRES_URL).render_as_string()}: {error.orig}")
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def moto_s3_server() -> Iterator[str]:
    """``host:port`` of a moto S3 server (real HTTP) in a child process, stopped afterwards."""
    process = subprocess.Popen([sys.executable, "-c", _MOTO_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = process.stdout.readline().strip()  # type: ignore[union-attr]
        if not port.isdigit():
            pytest.fail(f"moto server did not start (exit code {process.poll()})")
        yield f"127.0.0.1:{port}"
    finally:
        process.stdin.close()  # type: ignore[union-attr]
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
