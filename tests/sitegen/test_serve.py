"""`python -m sitegen serve` serves output/'s pages and nothing else: no directory listings, no
dot-paths (the build cache), nothing a symlink or an encoded `..` reaches outside output/."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.redisd import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "not for the web"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    out, outside = tmp / "output", tmp / "outside"
    (out / "ev" / "talks").mkdir(parents=True)
    (out / "ev" / "index.html").write_text("<h1>event page</h1>")
    (out / "ev" / "talks" / "notes.txt").write_text("talk notes")  # a folder with no index.html
    (out / ".build-cache").mkdir()
    (out / ".build-cache" / "content.json").write_text(SECRET)
    (out / "ev" / ".hidden.html").write_text(SECRET)
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (outside / "index.html").write_text(SECRET)
    (out / "leak.txt").symlink_to(outside / "secret.txt")
    (out / "elsewhere").symlink_to(outside, target_is_directory=True)
    (out / "inside.html").symlink_to(out / "ev" / "index.html")  # stays in output/: fine
    (out / "trap").mkdir()
    (out / "trap" / "index.html").symlink_to(outside / "index.html")
    port = free_port()
    env = {**os.environ, "AFA_OUTPUT_DIR": str(out), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sitegen", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_for_port(port, 90)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def get(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    """The path exactly as written (an HTTP client library would normalise `..` away)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def test_pages_are_served(served):
    assert get(served, "/ev/") == (200, "<h1>event page</h1>")
    assert get(served, "/ev/talks/notes.txt") == (200, "talk notes")
    assert get(served, "/inside.html") == (200, "<h1>event page</h1>")
    assert get(served, "/ev")[0] == 301  # to /ev/, as before


@pytest.mark.parametrize(
    "path",
    [
        "/",  # output/ itself has no index.html
        "/ev/talks/",
        "/.build-cache/content.json",
        "/.build-cache/",
        "/%2ebuild-cache/content.json",
        "/ev/.hidden.html",
        "/leak.txt",
        "/elsewhere/secret.txt",
        "/elsewhere/",
        "/trap/",
        "/ev/../../outside/secret.txt",
        "/ev/%2e%2e/%2e%2e/outside/secret.txt",
    ],
)
def test_no_listing_no_dot_path_nothing_outside_output(served, path):
    for method in ("GET", "HEAD"):
        status, body = get(served, path, method)
        assert status == 404, (method, path, status, body[:200])
        assert SECRET not in body and "Directory listing" not in body
