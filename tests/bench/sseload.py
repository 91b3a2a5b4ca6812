"""A cheap SSE load generator: N concurrent EventSource-like clients on raw asyncio sockets.

Run as a child process of bench_live.py, one or two at a time:

    python tests/bench/sseload.py --port P --path /live/E/stream --clients N --posts 200 \\
        --seq-from id --out /tmp/gen0

Each client sends a minimal HTTP/1.1 GET, de-chunks the body and finds each post's sequence
number with a few bytes.find() per read (`id: SEQ` for the sidecar, `data: {"seq":SEQ` for
Nchan, whose ids are its own). It stamps the arrival of each post with time.time() in one flat
array (client x seq), so nothing is allocated per message but the read itself and one slice.

The parent talks to it over stdin/stdout, one line each way:
    stdout  READY <connected>   every client got its 200 and its headers
            DONE                every client has every post
    stdin   stop                close everything, write <out>.json and <out>.arrivals, exit
A client whose connection ends early reconnects (as EventSource does) after RECONNECT_DELAY, with
Last-Event-ID: its last seq for the sidecar; reconnects, refusals and duplicates are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from array import array
from pathlib import Path

RECONNECT_DELAY = 1.0
CONNECT_CONCURRENCY = 200
MARKERS = {"id": b"id: ", "data": b'data: {"seq":'}  # each at a line start, then the seq


def raise_nofile() -> int:
    """Lift the soft open-files limit to the hard one; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Load:
    """Shared state of one generator process: the arrivals array and the counters."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.posts = args.posts
        self.marker = MARKERS[args.seq_from]
        self.arrivals = array("d", bytes(8 * args.clients * args.posts))
        self.counts = [0] * args.clients
        self.connected = 0
        self.done = 0
        self.duplicates = 0
        self.reconnects = 0
        self.refused = 0
        self.errors = 0
        self.ready = asyncio.Event()
        self.all_done = asyncio.Event()
        self.stopping = False
        self.clients: list[Client] = []


class Client(asyncio.Protocol):
    """One SSE subscriber. Counts itself connected at its first 200 response."""

    def __init__(self, load: Load, index: int) -> None:
        self.load, self.index, self.base = load, index, index * load.posts
        self.last_seq = 0
        self.transport: asyncio.Transport | None = None
        self.ever_connected = False
        self.reset()

    def reset(self) -> None:
        self.head = b""
        self.in_body = False
        self.chunked = False
        self.raw = b""  # undecoded chunk framing carried over to the next read
        self.chunk_left = 0
        self.after_data = False
        self.tail = b""  # an incomplete SSE line carried over

    def request(self) -> bytes:
        """The GET; a reconnect sends Last-Event-ID, as EventSource does (the sidecar's ids are
        seqs; Nchan's are its own, so a Nchan client starts over and counts duplicates)."""
        args = self.load.args
        resume = ""
        if args.seq_from == "id" and self.last_seq:
            resume = f"Last-Event-ID: {self.last_seq}\r\n"
        return (
            f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
            f"Accept: text/event-stream\r\nCache-Control: no-cache\r\n{resume}\r\n"
        ).encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request())

    def data_received(self, data: bytes) -> None:
        if not self.in_body:
            data = self.read_head(data)
            if data is None:
                return
        if self.chunked:
            data = self.dechunk(data)
        self.scan(data)

    def read_head(self, data: bytes) -> bytes | None:
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return None
        head, rest = self.head[:end].lower(), self.head[end + 4 :]
        if not head.startswith((b"http/1.1 200", b"http/1.0 200")):
            self.load.refused += 1
            self.transport.close()
            return None
        self.in_body, self.chunked = True, b"transfer-encoding: chunked" in head
        if not self.ever_connected:
            self.ever_connected = True
            self.load.connected += 1
            if self.load.connected == len(self.load.clients):
                self.load.ready.set()
        return rest

    def dechunk(self, data: bytes) -> bytes:
        """The body bytes inside HTTP/1.1 chunk framing. The usual read is exactly one whole
        chunk (one SSE event), taken with two finds and one slice."""
        if not (self.raw or self.chunk_left or self.after_data):
            head = data.find(b"\r\n")
            if head > 0:
                size = int(data[:head], 16)
                if size and len(data) == head + size + 4:
                    return data[head + 2 : head + 2 + size]
        return self.dechunk_slowly(data)

    def dechunk_slowly(self, data: bytes) -> bytes:
        buf, i, out = self.raw + data, 0, []
        n = len(buf)
        while i < n:
            if self.chunk_left:
                take = min(self.chunk_left, n - i)
                out.append(buf[i : i + take])
                i += take
                self.chunk_left -= take
            elif self.after_data:
                if n - i < 2:
                    break
                i += 2
                self.after_data = False
            else:
                j = buf.find(b"\r\n", i)
                if j < 0:
                    break
                size = int(buf[i:j].split(b";")[0], 16)
                i = j + 2
                if size == 0:
                    self.transport.close()
                    break
                self.chunk_left, self.after_data = size, True
        self.raw = buf[i:]
        return b"".join(out)

    def scan(self, data: bytes) -> None:
        """Record every post whose marker line is complete in what has arrived so far."""
        text = self.tail + data if self.tail else data
        cut = text.rfind(b"\n") + 1
        self.tail = text[cut:]
        marker, width = self.load.marker, len(self.load.marker)
        pos = text.find(marker, 0, cut)
        now = time.time()
        while pos >= 0:
            start = pos + width
            if pos == 0 or text[pos - 1] == 10:  # at a line start
                end = start
                while 48 <= text[end] <= 57:
                    end += 1
                if end > start:
                    self.arrived(int(text[start:end]), now)
            pos = text.find(marker, start, cut)

    def arrived(self, seq: int, now: float) -> None:
        load = self.load
        if seq > self.last_seq:
            self.last_seq = seq
        if not 0 < seq <= load.posts:
            return
        slot = self.base + seq - 1
        if load.arrivals[slot]:
            load.duplicates += 1
            return
        load.arrivals[slot] = now
        load.counts[self.index] += 1
        if load.counts[self.index] == load.posts:
            load.done += 1
            if load.done == len(load.clients):
                load.all_done.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.load.stopping or self.load.counts[self.index] >= self.load.posts:
            return
        self.load.reconnects += 1
        asyncio.get_running_loop().call_later(RECONNECT_DELAY, self.reconnect)

    def reconnect(self) -> None:
        if not self.load.stopping:
            self.reset()
            asyncio.ensure_future(connect(self, asyncio.Semaphore(1)))


async def connect(client: Client, gate: asyncio.Semaphore) -> None:
    args = client.load.args
    loop = asyncio.get_running_loop()
    async with gate:
        for attempt in range(50):
            try:
                await loop.create_connection(lambda: client, args.host, args.port)
                return
            except OSError:
                client.load.errors += 1
                await asyncio.sleep(min(0.05 * 2**attempt, 2.0))


async def control(load: Load) -> None:
    """Report READY and DONE on stdout; return when the parent says stop (or stdin closes)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    stop = asyncio.ensure_future(reader.readline())
    for name, event in (("READY", load.ready), ("DONE", load.all_done)):
        waiter = asyncio.ensure_future(event.wait())
        await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
        if stop.done():
            waiter.cancel()
            return
        extra = f" {load.connected}" if name == "READY" else ""
        print(f"{name}{extra}", flush=True)
        if name == "READY":
            load.t_ready, load.cpu_ready = time.time(), cpu_seconds()
    await stop


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(args: argparse.Namespace) -> dict:
    load = Load(args)
    load.t_ready, load.cpu_ready = time.time(), cpu_seconds()
    load.clients = [Client(load, i) for i in range(args.clients)]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    connecting = [asyncio.ensure_future(connect(c, gate)) for c in load.clients]
    await control(load)
    load.stopping = True
    t_stop, cpu_stop = time.time(), cpu_seconds()
    for task in connecting:
        task.cancel()
    for client in load.clients:
        if client.transport is not None:
            client.transport.abort()
    await asyncio.sleep(0)
    window = max(t_stop - load.t_ready, 1e-9)
    return {
        "clients": args.clients, "connected": load.connected, "complete_clients": load.done,
        "received": sum(load.counts), "duplicates": load.duplicates,
        "reconnects": load.reconnects, "refused": load.refused, "connect_errors": load.errors,
        "cpu_seconds_total": round(cpu_stop, 3),
        "cpu_seconds_measured": round(cpu_stop - load.cpu_ready, 3),
        "measured_seconds": round(window, 3),
        "cpu_percent_measured": round(100 * (cpu_stop - load.cpu_ready) / window, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "arrivals": load.arrivals,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True, help="e.g. /live/EVENT/stream?after=0")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--posts", type=int, required=True, help="posts carry seq 1..POSTS")
    parser.add_argument("--seq-from", choices=sorted(MARKERS), default="id")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    raise_nofile()
    result = asyncio.run(run(args))
    args.out.with_suffix(".arrivals").write_bytes(result.pop("arrivals").tobytes())
    args.out.with_suffix(".json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
