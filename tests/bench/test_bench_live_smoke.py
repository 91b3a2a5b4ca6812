"""bench_live.py still runs: one sidecar, and two behind HAProxy, 50 clients x 20 posts each,
every post delivered.

A correctness smoke test, never a timing assertion: the figures are printed, not judged. Nchan is
left out so the test needs no nginx; HAProxy is Debian's (`make servers`).
"""

import io
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench_live.py"


def test_bench_live_quick_delivers_everything(tmp_path):
    out = tmp_path / "live.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--servers", "sidecar,haproxy", "--out", str(out)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = json.loads(out.read_text())["runs"]
    assert [(r["server"], r["clients"]) for r in runs] == [("sidecar", 50), ("haproxy", 50)]
    for run in runs:
        assert run["error"] == ""
        assert run["connected"] == 50
        assert run["received"] == run["expected"] == 50 * 20
        assert run["completeness"] == 1.0
        assert run["duplicates"] == 0
        for figure in ("p50_ms", "p99_ms", "max_ms", "peak_rss_mb", "loadgen_cpu_percent"):
            assert run[figure] is not None and run[figure] >= 0, figure
    assert "µs of CPU per delivered post" in done.stdout


def test_nchan_publisher_reads_pipelined_answers_in_order():
    """The pipelined Nchan publisher reads answers back to back from one buffered stream."""
    sys.path.insert(0, str(BENCH.parent))
    import nchan

    body = b"queued messages: 1\r\nactive subscribers: 0\r\n"
    answers = (
        b"HTTP/1.1 202 Accepted\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n" % (len(body), body)
    )
    stream = io.BytesIO(answers)
    statuses = [nchan.read_response(stream) for _ in range(4)]
    assert statuses == [202, 201, 403, None]
