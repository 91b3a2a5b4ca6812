"""`make bench` (live): the SSE sidecar against nginx + Nchan, N concurrent clients on loopback.

For each N in --clients, and for each of --servers (default: one sidecar; "haproxy", two
sidecars behind a real HAProxy on one Redis; "nchan", nginx + Nchan with one worker, as the
sidecar runs one):
  1. start it: a real redis-server (EmbeddedRedis) and `python -m live serve` on free ports (two
     of them and haproxy, tests/haproxy.py), or nginx with the Nchan module from a generated
     config in a temp dir. As root everything runs at --nice -10, so other jobs on a shared
     machine take the CPU from the servers, the clients and the publisher less often;
  2. open N SSE clients from one or two load-generator processes (sseload.py: raw asyncio
     sockets) and wait until every one has its 200;
  3. publish --posts posts of ~--size bytes at --rate per second: for the sidecar an XADD through
     the collector's own publish_changes(), for Nchan an HTTP POST of the same JSON, pipelined on
     one keep-alive connection (nchan.Publisher: Nchan answers a POST only after its fan-out, so
     a publisher that waited for answers would be the bottleneck). The publisher stamps each
     post just before handing it over (t_pub, also in the payload); both servers' latency is
     arrival - t_pub, the same moment for both. "pub lag" is how late the publisher itself was
     against its schedule (should be ~0), "ack" how long the server took to answer a publish
     (Nchan: until it had written the post to the subscribers of the channel's worker);
  4. wait until every client has every post (or the drain timeout), stop everything.
Printed per run: completeness, latency p50/p99/max, posts delivered per second, the server's
peak RSS and CPU, the load generator's CPU; the server's CPU per delivered post and the viewers
one core carries at that rate; a "saturated" note for a server that delivered less than 90 % of
what was asked (its latency is then the length of its queue, not its speed: Nchan writes each
post to each subscriber on its own and, on a busy 2-core machine, needs more than 20 ms of wall
time per post for 1,000 subscribers); then sidecar/Nchan ratios and the targets:
  1,000 clients   p99 <= 1.5 x Nchan's p99
  5,000 clients   100 % delivered, p99 <= Nchan's p99, sidecar peak RSS <= 300 MB
  10,000 clients  all connect and receive everything
Figures also go to var/bench/live.json (or --out). The exit code is 1 when the sidecar lost posts.

    .venv/bin/python tests/bench/bench_live.py [--clients 1000,5000,10000] [--posts 200]
        [--rate 50] [--size 1024] [--quick] [--no-nchan] [--sidecar-env NAME=VALUE] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
import redis as redis_lib

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import nchan  # noqa: E402

from collector.publish import publish_changes  # noqa: E402
from core.archive import Change  # noqa: E402
from core.errors import AfaError  # noqa: E402
from core.items import Author, Item, item_to_dict  # noqa: E402
from core.redisd import EmbeddedRedis, free_port, wait_for_port  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tail import encode_entry, live_payload  # noqa: E402
from tests.haproxy import HAProxy  # noqa: E402

EVENT = "northwind-2026"
CONTENT_DIR = ROOT / "content"
STREAM_PATH = f"/live/{EVENT}/stream"
SECOND_GENERATOR_FROM = 2_000  # clients; above this the load is split over two processes
STARVED_PERCENT = 95  # machine busy at or above this: a server's latency is mostly waiting for CPU
RATE = [50.0]  # posts per second of this run (set from --rate)
TARGETS = {"ratio_p99_1000": 1.5, "ratio_p99_5000": 1.0, "rss_mb_5000": 300}


@dataclass
class Run:
    """One server at one client count: what was measured."""

    server: str
    clients: int
    posts: int
    expected: int = 0
    received: int = 0
    connected: int = 0
    duplicates: int = 0
    reconnects: int = 0
    refused: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    delivered_per_s: float = 0.0
    publish_lag_max_ms: float = 0.0
    ack_p50_ms: float | None = None
    ack_p99_ms: float | None = None
    connect_s: float = 0.0
    peak_rss_mb: float = 0.0
    rss_connected_mb: float = 0.0
    server_cpu_percent: float = 0.0
    server_cpu_seconds: float = 0.0
    loadgen_cpu_percent: float = 0.0
    loadgen_cpu_seconds: float = 0.0
    machine_busy_percent: float = 0.0
    loadavg_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    loadavg_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    server_stats: dict = field(default_factory=dict)
    error: str = ""

    @property
    def completeness(self) -> float:
        return self.received / self.expected if self.expected else 0.0


# -- the workload ---------------------------------------------------------------------------


def make_payload(seq: int, size: int, t_sched: float) -> dict:
    """The live payload of one post, as the collector stores it, padded to about `size` bytes
    of JSON, with its scheduled publish time in `t_sched`."""
    uri = f"https://bench.example/users/bench/statuses/{seq}"
    item = Item(
        uri=uri, source="mastodon", origin="bench.example", local_id=str(seq), url=uri,
        created_at=datetime.fromtimestamp(t_sched, UTC),
        author=Author(id="https://bench.example/users/bench", handle="@bench@bench.example",
                      name="Bench", url="https://bench.example/@bench"),
        tags=("northwind26",), lang="en",
    )  # fmt: skip
    payload = live_payload("post", seq, uri, item_to_dict(item))
    payload["t_sched"] = round(t_sched, 6)
    pad = max(size - len(encode_entry("post", payload)["data"]), 0)
    text = ("#northwind26 live benchmark post " * (pad // 33 + 1))[:pad]
    payload["item"]["text"] = text[: pad // 2]
    payload["item"]["html"] = f"<p>{text[: pad - pad // 2 - 7]}</p>"
    return payload


class RedisPublisher:
    """XADD exactly as the collector does: publish_changes() with the change's seq as the id."""

    def __init__(self, url: str) -> None:
        self.redis = redis_lib.Redis.from_url(url)
        self.tail_length = Settings().tail_length
        self.acks: list[float] = []
        self.errors: list[str] = []

    def publish(self, seq: int, payload: dict) -> None:
        change = Change(EVENT, seq, "post", payload["uri"], "", payload)
        publish_changes(self.redis, EVENT, [change], self.tail_length)
        self.acks.append(time.time())

    def close(self) -> None:
        self.redis.close()


class NchanPublisher:
    """The same JSON text, POSTed to Nchan's publisher location, pipelined (see nchan.py)."""

    def __init__(self, port: int, kind: str = "pipelined") -> None:
        make = nchan.SequentialPublisher if kind == "sequential" else nchan.Publisher
        self.http = make(port, EVENT)
        self.acks, self.errors = self.http.acks, self.http.errors

    def publish(self, seq: int, payload: dict) -> None:
        self.http.publish(encode_entry("post", payload)["data"])

    def close(self) -> None:
        self.http.close()


def publish_all(publisher, posts: int, rate: float, size: int) -> tuple[list[float], float]:
    """Publish seq 1..posts on a fixed schedule; returns (the publish stamps, worst lag in s).

    Each stamp is taken just before the post is handed to the server and also goes into the
    payload as t_pub; latency is counted from it, for both servers alike."""
    start = time.time() + 0.5
    schedule = [start + i / rate for i in range(posts)]
    payloads = [make_payload(i + 1, size, t) for i, t in enumerate(schedule)]
    sent, lag = [], 0.0
    for i, (t_sched, payload) in enumerate(zip(schedule, payloads, strict=True)):
        delay = t_sched - time.time()
        if delay > 0:
            time.sleep(delay)
        t_pub = time.time()
        payload["t_pub"] = round(t_pub, 6)
        publisher.publish(i + 1, payload)
        sent.append(t_pub)
        lag = max(lag, t_pub - t_sched)
    return sent, lag


# -- processes ------------------------------------------------------------------------------


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def stop_group(process: subprocess.Popen | None, timeout: float = 10) -> None:
    """SIGTERM the child's process group, then SIGKILL it if it lingers."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start_sidecar(
    tmp: Path, redis_url: str, port: int, extra_env: dict[str, str]
) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": redis_url, "AFA_CONTENT_DIR": str(CONTENT_DIR),
           "AFA_VAR_DIR": str(tmp / "var"),
           "AFA_LIVE_MAX_PER_ADDRESS": "0",  # every load client comes from 127.0.0.1
           **extra_env}  # fmt: skip
    log = open(tmp / "sidecar.log", "wb")  # noqa: SIM115 - closed with the child
    process = subprocess.Popen(
        [sys.executable, "-m", "live", "serve", "--port", str(port)], cwd=ROOT, env=env,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(AfaError):
            wait_for_port(port, timeout=0.5)
            return process
    stop_group(process)
    raise RuntimeError(f"the sidecar did not start:\n{tail(tmp / 'sidecar.log')}")


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def sidecar_stats(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
            return json.load(response)
    except OSError as exc:
        return {"error": str(exc)}


class RssSampler(threading.Thread):
    """Peak RSS of processes and their children (added up), sampled every 50 ms."""

    def __init__(self, *pids: int) -> None:
        super().__init__(daemon=True)
        self.processes = [psutil.Process(pid) for pid in pids]
        self.peak = self.last = 0
        self.halt = threading.Event()

    def tree(self) -> list[psutil.Process]:
        found = []
        for process in self.processes:
            with contextlib.suppress(psutil.Error):
                found += [process, *process.children(recursive=True)]
        return found

    def run(self) -> None:
        while not self.halt.wait(0.05):
            total = 0
            for proc in self.tree():
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak, self.last = max(self.peak, total), total

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def stop(self) -> float:
        self.halt.set()
        self.join()
        return self.peak / 2**20


class Generators:
    """One or two sseload.py children and their READY / DONE lines."""

    def __init__(self, tmp: Path, target: Server, clients: int, posts: int) -> None:
        count = 2 if clients >= SECOND_GENERATOR_FROM else 1
        shares = [clients // count + (i < clients % count) for i in range(count)]
        self.outs = [tmp / f"gen{i}" for i in range(count)]
        self.lines: queue.Queue[tuple[int, str]] = queue.Queue()
        self.processes = []
        for i, (share, out) in enumerate(zip(shares, self.outs, strict=True)):
            command = [sys.executable, str(HERE / "sseload.py"), "--port", str(target.port),
                       "--path", target.path, "--clients", str(share), "--posts", str(posts),
                       "--seq-from", target.seq_from, "--out", str(out)]  # fmt: skip
            process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                start_new_session=True,
            )  # fmt: skip
            self.processes.append(process)
            threading.Thread(target=self._read, args=(i, process), daemon=True).start()

    def _read(self, index: int, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.put((index, line.strip()))
        self.lines.put((index, "EXIT"))

    def wait_for(self, word: str, timeout: float) -> bool:
        """True once every generator has said `word` within `timeout` seconds."""
        pending, deadline = set(range(len(self.processes))), time.monotonic() + timeout
        while pending:
            try:
                index, line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                return False
            if line.startswith(word):
                pending.discard(index)
            elif line == "EXIT":
                return False
        return True

    def stop(self) -> list[tuple[dict, array]]:
        for process in self.processes:
            with contextlib.suppress(OSError):
                process.stdin.write("stop\n")
                process.stdin.flush()
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                stop_group(process)
        results = []
        for process, out in zip(self.processes, self.outs, strict=True):
            if not out.with_suffix(".json").exists():
                raise RuntimeError(f"load generator {out.name} failed (exit {process.returncode})")
            summary = json.loads(out.with_suffix(".json").read_text())
            arrivals = array("d")
            arrivals.frombytes(out.with_suffix(".arrivals").read_bytes())
            results.append((summary, arrivals))
        return results

    def kill(self) -> None:
        for process in self.processes:
            stop_group(process, timeout=5)


# -- one run --------------------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def measure(run: Run, results: list[tuple[dict, array]], sent: list[float]) -> None:
    posts, latencies, last_arrival = run.posts, [], 0.0
    for summary, arrivals in results:
        run.received += summary["received"]
        run.connected += summary["connected"]
        run.duplicates += summary["duplicates"]
        run.reconnects += summary["reconnects"]
        run.refused += summary["refused"]
        run.loadgen_cpu_percent += summary["cpu_percent_measured"]
        run.loadgen_cpu_seconds += summary["cpu_seconds_measured"]
        for c in range(summary["clients"]):
            row = arrivals[c * posts : (c + 1) * posts]
            latencies += [t - s for t, s in zip(row, sent, strict=True) if t]
        last_arrival = max(last_arrival, max(arrivals, default=0.0))
    if latencies:
        latencies.sort()
        run.p50_ms = round(percentile(latencies, 0.50) * 1000, 1)
        run.p99_ms = round(percentile(latencies, 0.99) * 1000, 1)
        run.max_ms = round(latencies[-1] * 1000, 1)
        run.delivered_per_s = round(len(latencies) / max(last_arrival - sent[0], 1e-9), 1)


@dataclass
class Server:
    """A started server under test: where clients connect and how posts enter it."""

    process: subprocess.Popen
    port: int
    publisher: RedisPublisher | NchanPublisher
    path: str  # what the clients GET
    seq_from: str  # where the load generator reads a post's seq: "id" or "data"
    diagnose: Callable[[], dict]
    others: list[subprocess.Popen] = field(default_factory=list)  # sampled with `process`

    @property
    def pids(self) -> list[int]:
        return [self.process.pid, *(p.pid for p in self.others)]


def start_sidecar_server(
    tmp: Path, stack: contextlib.ExitStack, extra_env: dict[str, str]
) -> Server:
    """redis-server + `python -m live serve`, each on a free port, stopped by `stack`."""
    redis, port = stack.enter_context(EmbeddedRedis(tmp / "redis", persist=False)), free_port()
    process = start_sidecar(tmp, redis.url, port, extra_env)
    stack.callback(stop_group, process)
    publisher = RedisPublisher(redis.url)
    stack.callback(publisher.close)
    path = f"{STREAM_PATH}?after=0"
    return Server(process, port, publisher, path, "id", lambda: sidecar_stats(port))


def start_balanced_server(
    tmp: Path, stack: contextlib.ExitStack, extra_env: dict[str, str]
) -> Server:
    """Two sidecars (one worker each, as nginx + Nchan runs one) behind a real HAProxy on one
    redis-server: what DESIGN.md's "any number of sidecars behind a load balancer" costs on
    one machine. Their CPU and memory are counted together, HAProxy's included."""
    redis = stack.enter_context(EmbeddedRedis(tmp / "redis", persist=False))
    sidecars = []
    for n in range(2):
        port = free_port()
        (tmp / f"s{n}").mkdir()
        process = start_sidecar(tmp / f"s{n}", redis.url, port, extra_env)
        stack.callback(stop_group, process)
        sidecars.append((process, port))
    balancer = HAProxy(tmp / "haproxy", free_port(), [port for _, port in sidecars]).start()
    stack.callback(balancer.stop)
    publisher = RedisPublisher(redis.url)
    stack.callback(publisher.close)
    path = f"{STREAM_PATH}?after=0"
    stats = lambda: {f"s{n}": sidecar_stats(port) for n, (_, port) in enumerate(sidecars)}  # noqa: E731
    return Server(balancer.process, balancer.port, publisher, path, "id", stats,
                  [process for process, _ in sidecars])  # fmt: skip


def start_nchan_server(
    tmp: Path, stack: contextlib.ExitStack, nginx_bin, posts: int, workers: int,
    publisher_kind: str = "pipelined",
) -> Server:  # fmt: skip
    """nginx + Nchan from a generated config, its buffer big enough for every post."""
    port = free_port()
    nginx = nchan.Nginx(*nginx_bin, tmp, port, [EVENT], max(posts, 1000), workers)
    stack.callback(nginx.stop)
    process = nginx.start().process
    wait_for_port(port, timeout=15)
    publisher = NchanPublisher(port, publisher_kind)
    stack.callback(publisher.close)
    return Server(process, port, publisher, STREAM_PATH, "data", lambda: nginx_log(nginx))


def nginx_log(nginx: nchan.Nginx) -> dict:
    text = nginx.error_log().strip()
    return {"error_log": text} if text else {}


def run_one(server: str, clients: int, args: argparse.Namespace, nginx_bin) -> Run:
    """Start `server`, connect `clients`, publish the workload, measure, stop everything."""
    run = Run(server, clients, args.posts, expected=clients * args.posts)
    run.loadavg_before = tuple(round(x, 2) for x in os.getloadavg())
    with (
        tempfile.TemporaryDirectory(prefix=f"bench-live-{server}-") as tmp_name,
        contextlib.ExitStack() as stack,
    ):
        tmp = Path(tmp_name)
        if server == "sidecar":
            target = start_sidecar_server(tmp, stack, args.sidecar_env)
        elif server == "haproxy":
            target = start_balanced_server(tmp, stack, args.sidecar_env)
        else:
            target = start_nchan_server(tmp, stack, nginx_bin, args.posts, args.nchan_workers,
                                        args.nchan_publisher)  # fmt: skip
        sampler = RssSampler(*target.pids)
        sampler.start()
        stack.callback(sampler.stop)
        generators = Generators(tmp, target, clients, args.posts)
        stack.callback(generators.kill)
        connect_all(run, generators, sampler)
        sent = deliver(run, target, generators, sampler, args)
        run.server_stats = target.diagnose()
        measure(run, generators.stop(), sent)
        run.peak_rss_mb = round(sampler.stop(), 1)
    run.loadavg_after = tuple(round(x, 2) for x in os.getloadavg())
    return run


def connect_all(run: Run, generators: Generators, sampler: RssSampler) -> None:
    timeout, started = max(60, run.clients / 100), time.monotonic()
    if not generators.wait_for("READY", timeout=timeout):
        run.error = f"not every client connected within {timeout:.0f}s"
    run.connect_s = round(time.monotonic() - started, 2)
    run.rss_connected_mb = round(sampler.last / 2**20, 1)


def deliver(run: Run, target: Server, generators: Generators, sampler: RssSampler,
            args: argparse.Namespace) -> list[float]:  # fmt: skip
    """Publish on schedule, wait for every post to arrive; returns the publish stamps."""
    cpu, started, machine = sampler.cpu_seconds(), time.monotonic(), psutil.cpu_times()
    sent, lag = publish_all(target.publisher, args.posts, args.rate, args.size)
    run.publish_lag_max_ms = round(lag * 1000, 1)
    drain = args.drain or 60 + run.expected / 20_000
    if not generators.wait_for("DONE", timeout=drain):
        run.error = run.error or f"not every post arrived within {drain:.0f}s of the last"
    elapsed = time.monotonic() - started
    run.server_cpu_seconds = round(sampler.cpu_seconds() - cpu, 3)
    run.server_cpu_percent = round(100 * run.server_cpu_seconds / elapsed, 1)
    run.machine_busy_percent = busy_since(machine)
    target.publisher.close()  # the Nchan publisher waits here for its last answers
    acks(run, sent, target.publisher)
    return sent


def busy_since(before) -> float:
    """How busy all the machine's CPUs were since `before` (psutil.cpu_times()), percent."""
    after = psutil.cpu_times()
    total = sum(after) - sum(before)
    idle = (after.idle + getattr(after, "iowait", 0)) - (before.idle + getattr(before, "iowait", 0))
    return round(100 * (1 - idle / total), 1) if total > 0 else 0.0


def acks(run: Run, sent: list[float], publisher: RedisPublisher | NchanPublisher) -> None:
    """How long the server took to answer each publish; a failed publish is the run's error."""
    waits = sorted(a - s for a, s in zip(publisher.acks, sent, strict=False))
    if waits:
        run.ack_p50_ms = round(percentile(waits, 0.50) * 1000, 1)
        run.ack_p99_ms = round(percentile(waits, 0.99) * 1000, 1)
    if publisher.errors:
        run.error = run.error or f"publish failed: {'; '.join(publisher.errors[:3])}"


# -- report ---------------------------------------------------------------------------------

COLUMNS = [
    ("server", "{:<8}"), ("clients", "{:>7}"), ("complete", "{:>9}"), ("p50 ms", "{:>8}"),
    ("p99 ms", "{:>8}"), ("max ms", "{:>8}"), ("posts/s", "{:>9}"), ("RSS MB", "{:>7}"),
    ("srv CPU%", "{:>8}"), ("gen CPU%", "{:>8}"), ("pub lag", "{:>8}"), ("ack p99", "{:>8}"),
    ("busy%", "{:>5}"),
    ("reconn", "{:>6}"), ("load", "{:>11}"),
]  # fmt: skip


def row(run: Run) -> str:
    values = [run.server, run.clients, f"{run.completeness * 100:.1f} %", run.p50_ms, run.p99_ms,
              run.max_ms, run.delivered_per_s, run.peak_rss_mb, run.server_cpu_percent,
              run.loadgen_cpu_percent, run.publish_lag_max_ms, run.ack_p99_ms,
              run.machine_busy_percent, run.reconnects,
              f"{run.loadavg_before[0]:.2f}>{run.loadavg_after[0]:.2f}"]  # fmt: skip
    return " ".join(
        fmt.format("-" if v is None else round(v, 1) if isinstance(v, float) else v)
        for (_, fmt), v in zip(COLUMNS, values, strict=True)
    )


def header() -> str:
    return " ".join(fmt.format(name) for name, fmt in COLUMNS)


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def verdicts(runs: list[Run]) -> list[str]:
    """The issue's targets, each with its figure and PASS / FAIL (or n/a without Nchan)."""
    by = {(r.server, r.clients): r for r in runs}
    lines = []
    for run in runs:
        saturated = run.delivered_per_s < 0.9 * run.clients * RATE[0]
        if run.received and run.server_cpu_seconds and saturated:
            lines.append(f"{run.clients:>6} clients: {run.server} is saturated here, so its CPU "
                         "per post (posts coalesce in its queue) is no capacity figure")  # fmt: skip
        elif run.received and run.server_cpu_seconds:
            per = run.server_cpu_seconds / run.received
            lines.append(f"{run.clients:>6} clients: {run.server} used {per * 1e6:.1f} µs of CPU per "
                         f"delivered post: at {RATE[0]:g} posts/s one core carries about "
                         f"{1 / (per * RATE[0]):,.0f} viewers")  # fmt: skip
    for run in runs:
        asked = run.clients * RATE[0]
        if run.delivered_per_s and run.delivered_per_s < 0.9 * asked:
            lines.append(f"{run.clients:>6} clients: {run.server} delivered "
                         f"{run.delivered_per_s:,.0f} posts/s of the {asked:,.0f}/s asked: "
                         "saturated, so its latency is the length of its queue")  # fmt: skip
    for n in sorted({r.clients for r in runs}):
        side, ref = by.get(("sidecar", n)), by.get(("nchan", n))
        if side is None:
            continue
        if ref is not None:
            p50, p99 = ratio(side.p50_ms, ref.p50_ms), ratio(side.p99_ms, ref.p99_ms)
            lines.append(f"{n:>6} clients: sidecar/nchan p50 x{p50}, p99 x{p99}")
            if ref.machine_busy_percent >= STARVED_PERCENT:
                lines.append(f"        note: the CPUs were {ref.machine_busy_percent} % busy during "
                             "Nchan's run: its figure is what it did with the CPU it got")  # fmt: skip
        else:
            p99 = None
        if n == 1_000:
            limit = TARGETS["ratio_p99_1000"]
            lines.append(f"        target p99 <= {limit} x nchan: {verdict(p99, limit)}")
        if n == 5_000:
            full = side.completeness == 1
            lines.append(f"        target 100 % delivered: {'PASS' if full else 'FAIL'}")
            lines.append(f"        target p99 <= nchan: {verdict(p99, TARGETS['ratio_p99_5000'])}")
            rss_ok = side.peak_rss_mb <= TARGETS["rss_mb_5000"]
            lines.append(f"        target sidecar RSS <= 300 MB: {'PASS' if rss_ok else 'FAIL'}")
        if n == 10_000:
            ok = side.connected == n and side.completeness == 1
            lines.append(f"        target all connect and receive all: {'PASS' if ok else 'FAIL'}")
    return lines


def verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "n/a (no nchan figure)"
    return f"{'PASS' if value <= limit else 'FAIL'} (x{value})"


def report(runs: list[Run], args: argparse.Namespace) -> dict:
    print("\n" + header())
    for run in runs:
        print(row(run))
    for run in runs:
        if run.error:
            print(f"! {run.server} {run.clients}: {run.error.strip()}")
    print()
    for line in verdicts(runs):
        print(line)
    print("\nlatency = arrival - t_pub, the publisher's stamp just before it hands a post over")
    print("load = the machine's 1-minute load average before>after the run: other jobs share the")
    print("  2 CPUs with the server and the load generator, so every figure here is noisy;")
    print("  busy% = all CPUs' busy share while publishing and delivering (100 = starved)")
    print("pub lag = how late the publisher was against its schedule, ms (Nchan is POSTed to")
    print("  pipelined, so it never waits for Nchan); ack p99 = publish to the server's answer, ms")
    print("  (Nchan answers once it has written the post to its worker's subscribers)")
    return {
        "workload": {"posts": args.posts, "rate": args.rate, "size": args.size},
        "sidecar_env": args.sidecar_env,
        "machine": {"cpus": os.cpu_count(), "note": "loopback; other jobs may share the CPUs"},
        "runs": [{**run.__dict__, "completeness": run.completeness} for run in runs],
        "verdicts": verdicts(runs),
    }


def prioritise(nice: int) -> str:
    """Raise this process's priority (children inherit it) when root; say what it is."""
    if nice and os.geteuid() == 0:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    return f"nice {os.getpriority(os.PRIO_PROCESS, 0)}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1000,5000,10000", help="comma-separated counts")
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="posts per second")
    parser.add_argument("--size", type=int, default=1024, help="bytes of JSON per post")
    parser.add_argument("--drain", type=float, default=None,
                        help="seconds to wait after the last publish for every post to arrive "
                             "(default 60 + 1 s per 20,000 deliveries)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="50 clients, 20 posts (smoke test)")
    parser.add_argument("--no-nchan", action="store_true", help="measure the sidecar only")
    parser.add_argument("--servers", default="sidecar,haproxy,nchan",
                        help="comma-separated, in order: sidecar, haproxy (two sidecars behind "
                             "HAProxy), nchan")  # fmt: skip
    parser.add_argument("--nchan-workers", type=int, default=1,
                        help="nginx worker_processes for Nchan (default 1, as one sidecar "
                             "worker; 0 = one per CPU)")  # fmt: skip
    parser.add_argument("--nchan-publisher", choices=["pipelined", "sequential"],
                        default="pipelined",
                        help="POST to Nchan pipelined (never waits for it) or one after "
                             "another, each waiting for its answer")  # fmt: skip
    parser.add_argument("--nice", type=int, default=-10,
                        help="run the servers, clients and publisher at this priority (root "
                             "only; 0 leaves it): on a shared machine other jobs then take "
                             "the CPU from them less often")  # fmt: skip
    parser.add_argument("--sidecar-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the sidecar, e.g. AFA_LIVE_QUEUE_SIZE=2000 "
                             "(repeatable; recorded in the JSON)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "live.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.posts, args.drain = "50", 20, 30.0
    args.client_counts = [int(n) for n in args.clients.split(",") if n.strip()]
    args.servers = [n.strip() for n in args.servers.split(",") if n.strip()]
    if args.no_nchan:
        args.servers = [n for n in args.servers if n != "nchan"]
    args.sidecar_env = dict(item.split("=", 1) for item in args.sidecar_env)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    RATE[0] = args.rate
    nofile = raise_nofile()
    print(f"open files limit {nofile}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}; "
          f"priority {prioritise(args.nice)}")  # fmt: skip
    print(f"workload: {args.posts} posts at {args.rate:g}/s, ~{args.size} B each")
    nginx_bin = nchan.ensure_nchan() if "nchan" in args.servers else None
    if args.no_nchan:
        print("nchan: left out (--no-nchan)")
    servers = [s for s in args.servers if s != "nchan" or nginx_bin]
    runs = []
    for clients in args.client_counts:
        for server in servers:
            print(f"-- {server}, {clients} clients ...", flush=True)
            try:
                run = run_one(server, clients, args, nginx_bin)
            except (OSError, RuntimeError, AfaError) as exc:  # report it, go on with the rest
                run = Run(server, clients, args.posts, expected=clients * args.posts)
                run.error = f"{type(exc).__name__}: {exc}"
            print(header() + "\n" + row(run), flush=True)
            runs.append(run)
    document = report(runs, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwritten {args.out}")
    lost = any(r.server in ("sidecar", "haproxy") and r.completeness < 1 for r in runs)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
