"""A plain static file server for output/ (http.server), quiet and stoppable with SIGTERM."""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass  # one line per request drowns the demo's output


def serve_output(root: Path, host: str, port: int, log: Callable[[str], None]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True

    def stop(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    log(f"serving {root}/ at http://{host}:{port}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log("stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
