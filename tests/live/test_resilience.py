"""Failure flows with real processes: Redis restarts, a client that stops reading, shutdown."""

from __future__ import annotations

import signal
import socket
import time

import httpx
import redis as redis_lib

from core.redisd import EmbeddedRedis

from .conftest import EVENT, Live, publish


def read_until(live: Live, last: int, cursor: int, timeout: float = 30.0) -> list[int]:
    """Read seqs after `cursor` up to `last`, reconnecting by Last-Event-ID whenever the response
    ends or breaks, as EventSource does."""
    got: list[int] = []
    deadline = time.monotonic() + timeout
    while (not got or got[-1] < last) and time.monotonic() < deadline:
        try:
            with live.stream(last_id=got[-1] if got else cursor) as stream:
                while (message := stream.next()) is not None:
                    got.append(message.seq)
                    if message.seq >= last:
                        break
        except (httpx.HTTPError, StopIteration):
            time.sleep(0.2)
    return got


def test_redis_restart_loses_nothing_and_repeats_nothing(live, redis_server, tmp_path):
    first = redis_lib.Redis.from_url(redis_server.url, decode_responses=True)
    got: list[int] = []
    with live.stream(after=0) as stream:
        publish(first, range(1, 6))
        got += [m.seq for m in stream.take(5)]
        redis_server.stop()
        first.close()
        assert live.client.get("/healthz").json() == {"status": "ok", "redis": False}
        refused = live.client.get(f"/live/{EVENT}/stream?after=5")  # a newcomer meanwhile
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
        again = EmbeddedRedis(redis_server.workdir, persist=False)  # the same socket
        again.start()
        try:
            second = redis_lib.Redis.from_url(again.url, decode_responses=True)
            publish(second, range(1, 6))  # the collector re-seeds from the archive, same IDs
            publish(second, range(6, 11))
            while (message := stream.next()) is not None:
                got.append(message.seq)
                if message.seq == 10:
                    break
            publish(second, range(11, 13))  # and keeps publishing
            got += read_until(live, 12, got[-1])
            stats = live.stats()
            second.close()
        finally:
            again.stop()
    assert got == list(range(1, 13))
    assert stats["reader_errors"] >= 1 and stats["slow_dropped"] == 0


def test_a_client_that_stops_reading_is_dropped_and_others_get_everything(start_live, redis_client):
    live = start_live(AFA_LIVE_QUEUE_SIZE="20", AFA_LIVE_SEND_TIMEOUT="60")
    port = int(live.url.rsplit(":", 1)[1])
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", port))
    stuck.sendall(f"GET /live/{EVENT}/stream HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    got: list[int] = []
    with stuck, live.stream() as reader:

        def publish_and_read(seqs: range, **fields: str) -> None:
            # The reader takes each batch before the next goes out: it can never fall behind
            # by more than a batch, however busy the machine, so only the stuck client fills up.
            publish(redis_client, seqs, **fields)
            while len(got) < seqs[-1] and (message := reader.next()) is not None:
                got.append(message.seq)

        live.wait_stats(lambda s: s["viewers"].get(EVENT) == 2)
        big = "<p>" + "x" * 20_000 + "</p>"
        seq = 0
        while live.stats()["slow_dropped"] == 0 and seq < 2_000:
            publish_and_read(range(seq + 1, seq + 6), html=big)
            seq += 5
        publish_and_read(range(seq + 1, seq + 6))
        seq += 5
        stats = live.wait_stats(lambda s: s["connections"] == 1)
    assert got == list(range(1, seq + 1))
    assert stats["slow_dropped"] == 1
    assert stats["viewers"] == {EVENT: 1} and stats["connections"] == 1
    output = live.child.stop()
    assert "without completing response" not in output and "Traceback" not in output, output


def test_sigterm_ends_streams_and_exits_cleanly(live, redis_client):
    with live.stream() as stream:
        publish(redis_client, [1])
        assert [m.seq for m in stream.take(1)] == [1]
        started = time.monotonic()
        live.child.process.send_signal(signal.SIGTERM)
        try:
            assert stream.next() is None  # the stream ends, it does not hang
        except httpx.HTTPError:
            pass
    # uvicorn finishes its shutdown, then re-raises the signal it caught: exit status -SIGTERM.
    assert live.child.process.wait(10) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 8
    output = live.child.stop()
    assert "Application shutdown complete" in output and "Traceback" not in output


def test_two_worker_processes_on_one_port_each_deliver_everything(start_live, redis_client):
    live = start_live(AFA_LIVE_WORKERS="2")
    streams = [live.stream() for _ in range(6)]
    try:
        publish(redis_client, range(1, 4))
        for stream in streams:
            assert [m.seq for m in stream.take(3)] == [1, 2, 3]
        live.child.process.send_signal(signal.SIGTERM)
        for stream in streams:
            try:
                assert stream.next() is None  # each worker ends its streams at once
            except httpx.HTTPError:
                pass
    finally:
        for stream in streams:
            stream.close()
    assert live.child.process.wait(10) in (0, -signal.SIGTERM)
    output = live.child.stop()
    assert output.count("Application startup complete") == 2, output
    assert "Traceback" not in output, output
