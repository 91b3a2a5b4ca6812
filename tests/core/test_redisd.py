"""core.redisd: the embedded Redis is reachable by our own user only, and cannot rewrite itself.

Issue 13: it listened on 127.0.0.1 with no password, so any local user could write entries that
go straight to live viewers, or `CONFIG SET dir` to write files as the service.
"""

from __future__ import annotations

import stat

import psutil
import pytest
import redis as redis_lib

from core.errors import AfaError
from core.redisconn import connect
from core.redisd import EmbeddedRedis


def test_it_listens_on_a_private_unix_socket_and_no_tcp_port(redis_server):
    listening = psutil.Process(redis_server.process.pid).net_connections(kind="inet")
    assert [c.laddr for c in listening if c.status == psutil.CONN_LISTEN] == []
    assert redis_server.url == f"unix://{redis_server.socket}?db=0"
    assert stat.S_IMODE(redis_server.workdir.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(redis_server.socket.stat().st_mode)
    assert stat.S_IMODE(redis_server.socket.stat().st_mode) & 0o077 == 0


@pytest.mark.parametrize(
    "command",
    [
        ("CONFIG", "SET", "dir", "/tmp"),
        ("CONFIG", "GET", "dir"),
        ("DEBUG", "SLEEP", "0"),
        ("MODULE", "LIST"),
        ("ACL", "SETUSER", "default", "+config"),
        ("REPLICAOF", "127.0.0.1", "1"),
    ],
)
def test_commands_that_change_the_server_itself_are_refused(redis_server, command):
    client = connect(redis_server.url)
    try:
        with pytest.raises(redis_lib.exceptions.NoPermissionError):
            client.execute_command(*command)
        client.xadd("afa:check", {"kind": "post"}, id="1-0")  # what the parts do still works
        assert client.xlen("afa:check") == 1
    finally:
        client.close()


def test_a_folder_too_deep_for_a_socket_is_named(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with pytest.raises(AfaError, match="too deep for a Unix socket"):
        EmbeddedRedis(deep).start()
