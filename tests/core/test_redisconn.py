"""core.redisconn: one opener for every part, and URLs shown without their password."""

import pytest

from core.errors import AfaError
from core.redisconn import connect, redact, sentinel_target
from core.settings import Settings


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


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "redis://cache.example:6379/0?password=s3cr3t",
            "redis://cache.example:6379/0?password=***",
        ),
        ("redis://tok3n-s3cr3t@cache.example:6379/0", "redis://***@cache.example:6379/0"),
        (
            "redis+sentinel://:s3cr3t@10.0.0.1:26379,10.0.0.2:26379/afa/0",
            "redis+sentinel://***@10.0.0.1:26379,10.0.0.2:26379/afa/0",
        ),
        (
            "redis+sentinel://s1,s2/afa?sentinel_password=s3cr3t",
            "redis+sentinel://s1,s2/afa?sentinel_password=***",
        ),
    ],
)
def test_redact_hides_passwords_in_the_query_and_in_sentinel_urls(url, shown):
    assert redact(url) == shown
    assert "s3cr3t" not in redact(url)


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_db():
    target = sentinel_target(
        "redis+sentinel://app:pw@s1.example:26380,s2.example,[::1]:5000/afa-main/2"
        "?sentinel_password=spw"
    )
    assert target.sentinels == [("s1.example", 26380), ("s2.example", 26379), ("::1", 5000)]
    assert (target.service, target.db) == ("afa-main", 2)
    assert target.auth == {"username": "app", "password": "pw"}
    assert target.sentinel_auth == {"password": "spw"}
    assert sentinel_target("redis://127.0.0.1:6379/0") is None


@pytest.mark.parametrize(
    "url", ["redis+sentinel://s1:26379", "redis+sentinel://:pw@s1:x/afa", "redis+sentinel:///afa"]
)
def test_a_bad_sentinel_url_is_named_without_its_password(url):
    with pytest.raises(AfaError, match="REDIS_URL redis\\+sentinel:") as caught:
        connect(url)
    assert "pw@" not in str(caught.value) and url.split("@")[-1] in str(caught.value)


def test_settings_never_show_the_redis_url():
    settings = Settings(redis_url="redis://:s3cr3t@cache.example:6379/0")
    assert "s3cr3t" not in repr(settings)
