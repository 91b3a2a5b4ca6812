"""The live sidecar run for real: uvicorn in a subprocess on a free port, a real redis-server,
and a small SSE parser over httpx streams."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core.redisd import free_port
from core.tail import encode_entry, entry_id, live_payload, stream_key

EVENT = "northwind-2026"
SAMPLE_CONTENT = Path(__file__).resolve().parents[2] / "content"


@dataclass
class Message:
    """One dispatched SSE block: what EventSource would hand to a listener (or the retry hint)."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    @property
    def seq(self) -> int:
        return int(self.id or 0)


class SSEParser:
    """Lines in, Messages out, as the WHATWG EventSource parser reads them (comments skipped)."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.data: list[str] = []

    def feed(self, line: str) -> Message | None:
        if line == "":
            return self.dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self.data.append(value)
        else:
            self.fields[name] = value
        return None

    def dispatch(self) -> Message | None:
        fields, data = self.fields, self.data
        self.fields, self.data = {}, []
        if not fields and not data:
            return None
        retry = int(fields["retry"]) if fields.get("retry", "").isdigit() else None
        return Message(fields.get("event", "message"), "\n".join(data), fields.get("id"), retry)


def parse_sse(lines: Iterable[str]) -> Iterator[Message]:
    parser = SSEParser()
    for line in lines:
        message = parser.feed(line)
        if message is not None:
            yield message


async def aparse_sse(lines: AsyncIterator[str]) -> AsyncIterator[Message]:
    parser = SSEParser()
    async for line in lines:
        message = parser.feed(line)
        if message is not None:
            yield message


class Stream:
    """One open SSE response, read message by message (sync); closed by the context manager."""

    def __init__(self, client: httpx.Client, url: str, headers: dict[str, str]) -> None:
        self._cm = client.stream("GET", url, headers=headers)
        self.response = self._cm.__enter__()
        self.messages = parse_sse(self.response.iter_lines())
        self.retry: int | None = None
        if self.response.status_code == 200:
            first = next(self.messages)  # the retry hint: the cursor is fixed from here on
            self.retry = first.retry

    def next(self) -> Message | None:
        return next(self.messages, None)

    def take(self, n: int) -> list[Message]:
        out = []
        for _ in range(n):
            message = self.next()
            assert message is not None, f"stream ended after {out}"
            out.append(message)
        return out

    def close(self) -> None:
        self._cm.__exit__(None, None, None)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Live:
    """A running sidecar: its base URL and helpers to open streams and read /stats."""

    def __init__(self, child, url: str) -> None:
        self.child, self.url = child, url
        self.client = httpx.Client(base_url=url, timeout=httpx.Timeout(10.0))

    def stream(self, event: str = EVENT, after: int | None = None, last_id: int | None = None,
               headers: dict[str, str] | None = None) -> Stream:  # fmt: skip
        url = f"/live/{event}/stream" + (f"?after={after}" if after is not None else "")
        headers = dict(headers or {})
        if last_id is not None:
            headers["Last-Event-ID"] = str(last_id)
        return Stream(self.client, url, headers)

    def stats(self) -> dict:
        return self.client.get("/stats").json()

    def wait_stats(self, check, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if check(stats) or time.monotonic() > deadline:
                return stats
            time.sleep(0.05)


@pytest.fixture
def start_live(start_child, redis_url):
    """start_live(**env) -> Live: `python -m live serve` on a free port, stopped at teardown."""
    opened: list[Live] = []

    def start(**env: str) -> Live:
        port = free_port()
        base_env = {"REDIS_URL": redis_url, "AFA_CONTENT_DIR": str(SAMPLE_CONTENT)}
        child = start_child([sys.executable, "-m", "live", "serve", "--port", str(port)],
                            port=port, env={**base_env, **env})  # fmt: skip
        child.wait_ready()
        live = Live(child, f"http://127.0.0.1:{port}")
        opened.append(live)
        return live

    yield start
    for live in opened:
        live.client.close()


@pytest.fixture
def live(start_live) -> Live:
    return start_live()


def publish(redis, seqs: Iterable[int], event: str = EVENT, html: str = "<p>x</p>") -> None:
    """XADD posts the way the collector does: id SEQ-0, fields from core.tail.encode_entry."""
    pipe = redis.pipeline(transaction=False)
    for seq in seqs:
        uri = f"at://did:plc:test/app.bsky.feed.post/{seq}"
        item = {"uri": uri, "html": html, "author": {"name": "Ada Ö"}}
        fields = encode_entry("post", live_payload("post", seq, uri, item))
        pipe.xadd(stream_key(event), fields, id=entry_id(seq))
    pipe.execute()


def seqs(messages: Iterable[Message]) -> list[int]:
    return [m.seq for m in messages]
