from pathlib import Path

import pytest

from core.errors import AfaError
from core.settings import Settings, load_settings, settings_help


def test_defaults_without_environment(tmp_path):
    settings = load_settings({}, env_file=None)
    assert settings == Settings()
    assert settings.redis_url == ""
    assert settings.public_live_url == "http://127.0.0.1:8001"


def test_environment_overrides_and_casts():
    settings = load_settings(
        {
            "REDIS_URL": "redis://db:6379/2",
            "AFA_LIVE_PORT": "9000",
            "AFA_ARCHIVE_PATH": "/x/a.db",
            "AFA_REPLAY_SPEED": "120",
        },
        env_file=None,
    )
    assert settings.redis_url == "redis://db:6379/2"
    assert settings.live_port == 9000
    assert settings.archive_path == Path("/x/a.db")
    assert settings.replay_speed == 120.0


def test_dotenv_file_is_read_after_the_environment(tmp_path):
    env = tmp_path / ".env"
    env.write_text("AFA_LIVE_PORT=7000\nAFA_SITE_PORT=7001\n")
    settings = load_settings({"AFA_SITE_PORT": "7002"}, env_file=env)
    assert (settings.live_port, settings.site_port) == (7000, 7002)


def test_bad_value_names_the_setting():
    with pytest.raises(AfaError) as info:
        load_settings({"AFA_LIVE_PORT": "eighty"}, env_file=None)
    assert str(info.value).startswith("setting AFA_LIVE_PORT:")


def test_every_setting_has_help():
    rows = settings_help()
    assert rows and all(help_text.strip() for _, _, help_text in rows)
