"""Real fixtures: a SQLite file under tmp_path, a redis-server on a free port, settings overrides."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as redis_lib

from core.archive import open_archive
from core.errors import AfaError
from core.redisd import EmbeddedRedis, free_port, wait_for_port
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# Copies of ../shared/fixtures (real payloads; origins in tests/fixtures/shared/SOURCES.md)
SHARED_FIXTURES = ROOT / "tests" / "fixtures" / "shared"
SAMPLE_CONTENT = ROOT / "content"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "archive.db"


@pytest.fixture
def archive(db_path: Path):
    db = open_archive(db_path)
    yield db
    db.close()


@pytest.fixture
def redis_server(tmp_path: Path):
    """A real redis-server on a free port, stopped after the test."""
    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str):
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def make_settings(tmp_path: Path):
    """Settings for a test, with overrides: Pelican's get_settings(**kwargs)."""

    def make(**overrides) -> Settings:
        base = Settings(
            content_dir=SAMPLE_CONTENT,
            archive_path=tmp_path / "archive.db",
            output_dir=tmp_path / "output",
            var_dir=tmp_path / "var",
        )
        return base.with_overrides(**overrides)

    return make


class Child:
    """A child process on a free port: started, waited for, and always stopped."""

    def __init__(self, args: list[str], port: int, env: dict | None = None, cwd: Path = ROOT):
        self.port = port
        self.log = open(os.devnull, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            args,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: stop() ends its workers too
        )

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Until the child listens on its port, failing at once (with its output) if it exits
        first. A loaded machine only makes a start slower, so the bound is a last resort for a
        child that hangs, not a measure of how long a start may take."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                wait_for_port(self.port, 0.5)
                return
            except AfaError:
                continue
        code = self.process.poll()
        output = self.stop()
        state = (
            f"exited with {code}" if code is not None else f"not listening after {timeout:.0f} s"
        )
        raise RuntimeError(f"child did not start ({state}): {output}")

    def stop(self) -> str:
        """SIGTERM the child and wait for it; then SIGKILL whatever is left of its process
        group (a server's workers, which hold its output pipe open: reading the output would
        wait for them forever)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return self.process.stdout.read() if self.process.stdout else ""


@pytest.fixture
def start_child():
    """start_child([...args], port=..., env=...) -> Child; every child is stopped at teardown."""
    children: list[Child] = []

    def start(args: list[str], port: int | None = None, env: dict | None = None) -> Child:
        child = Child(args, port or free_port(), env)
        children.append(child)
        return child

    yield start
    for child in children:
        child.stop()


PYTHON = sys.executable
assert shutil.which(PYTHON) or Path(PYTHON).exists()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3-compatible server (SeaweedFS) for the whole session; use a bucket of your own."""
    from tests.s3server import SeaweedS3

    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs")).start()
    yield server
    server.stop()
