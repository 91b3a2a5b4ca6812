"""A REDIS_URL's password never reaches a banner or an error message (issue 13): each place
that shows the URL shows `core.redisconn.redact(url)`."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from admin.cli import banner
from admin.supervise import RunPlan
from core.redisconn import redact
from core.redisd import free_port
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cr3t-pass"


def urls() -> list[str]:
    port = free_port()  # nothing listens there
    return [
        f"redis://:{SECRET}@127.0.0.1:{port}/0",
        f"redis://app:{SECRET}@127.0.0.1:{port}/0",
        f"redis://127.0.0.1:{port}/0?password={SECRET}",
        f"redis+sentinel://:{SECRET}@127.0.0.1:{port}/afa/0?sentinel_password={SECRET}",
    ]


@pytest.mark.parametrize("url", urls()[::3])
def test_an_unreachable_redis_is_named_without_its_password(url, tmp_path):
    recording = tmp_path / "recording.jsonl"
    recording.write_text('{"format": "afa-recording/1", "event": "northwind-2026"}\n')
    env = {**os.environ, "REDIS_URL": url, "AFA_ARCHIVE_PATH": str(tmp_path / "archive.db"),
           "AFA_CONTENT_DIR": str(ROOT / "content"), "AFA_VAR_DIR": str(tmp_path / "var")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "collector", "replay", "northwind-2026", str(recording)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"cannot reach Redis at {redact(url)}" in output, output
    assert SECRET not in output


@pytest.mark.parametrize("url", urls())
def test_the_banners_show_the_url_without_its_password(url, tmp_path, capsys):
    banner(Settings(), RunPlan(tmp_path, [], {}), url, static=True, dashboard=True)
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    demo.print_banner("Northwind", "northwind-2026", 8000, 8001, url, 60, tmp_path)
    shown = capsys.readouterr().out
    assert shown.count(f"  redis        {redact(url)}\n") == 2
    assert SECRET not in shown
