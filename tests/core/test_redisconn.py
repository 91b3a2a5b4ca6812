"""core.redisconn: one opener for every part, and URLs shown without their password."""

import pytest

from core.redisconn import connect, redact


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:s3cr3t@cache.example:6379/0", "redis://***@cache.example:6379/0"),
        ("rediss://app:s3cr3t@cache.example:6380/2", "rediss://app:***@cache.example:6380/2"),
        ("unix:///run/afa/redis.sock?db=0", "unix:///run/afa/redis.sock?db=0"),
    ],
)
def test_redact_hides_the_password_and_keeps_the_rest(url, shown):
    assert redact(url) == shown
    assert "s3cr3t" not in redact(url)


def test_connect_reaches_a_real_server(redis_url):
    client = connect(redis_url, socket_timeout=5)
    try:
        assert client.ping() is True
    finally:
        client.close()
