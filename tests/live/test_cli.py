"""live/cli.py: help, and clear errors before anything starts."""

from __future__ import annotations

from click.testing import CliRunner

from live.cli import cli


def test_serve_has_help():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "--port" in result.output


def test_serve_needs_redis_url(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: REDIS_URL is not set: the live sidecar reads")


def test_serve_reports_missing_content(monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("AFA_CONTENT_DIR", str(tmp_path / "nowhere"))
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'nowhere'}: content folder not found\n"
