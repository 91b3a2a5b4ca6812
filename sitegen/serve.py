"""A plain static file server for output/ (http.server), quiet and stoppable with SIGTERM.

It serves the site's files and nothing else: no directory listings (a folder without an
index.html is a 404), no path with a segment starting with '.' (the build cache, editor and VCS
files), and nothing whose resolved path leaves output/ (a symlink out, an encoded '..')."""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass  # one line per request drowns the demo's output

    def send_head(self):
        if not self.allowed(self.translate_path(self.path)):
            self.send_error(404, "File not found")
            return None
        return super().send_head()

    def list_directory(self, path):  # noqa: ARG002
        self.send_error(404, "File not found")
        return None

    def allowed(self, path: str) -> bool:
        """No dot-segment in the URL, and the file (or a folder's index) inside the root."""
        segments = unquote(urlsplit(self.path).path).split("/")
        if any(s.startswith(".") for s in segments):
            return False
        root = os.path.realpath(self.directory)
        candidates = [path]
        if os.path.isdir(path):
            candidates += [os.path.join(path, name) for name in ("index.html", "index.htm")]
        return all(_inside(os.path.realpath(c), root) for c in candidates if os.path.lexists(c))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


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
