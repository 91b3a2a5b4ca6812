"""Publish to S3-compatible object storage (AWS S3, Cloudflare R2, Backblaze B2, MinIO,
SeaweedFS) with obstore, the Python binding of Rust's object_store.

Uploads run concurrently (AFA_PUBLISH_CONCURRENCY at once), each one only after the uploads it
waits for (plan.make_plan); each object carries the Content-Type and Cache-Control of
headers.py, and text is stored gzip-compressed with `Content-Encoding: gzip` when
AFA_PUBLISH_GZIP is on (object storage cannot negotiate encodings, and every browser accepts
gzip). Deletes go last, a thousand keys to a request. The journal (state.State) is updated as
uploads finish.

Credentials are AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) from the
environment, the names every S3 tool and Litestream read; they are never logged.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import obstore
from obstore.store import S3Store

from core.settings import Settings, secret

from .headers import cache_control, compressible, content_type
from .plan import Plan, PublishError
from .state import State

DELETE_BATCH = 1000


@dataclass(frozen=True)
class Bucket:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Bucket:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise PublishError(f"not an object storage target (s3://BUCKET/PREFIX): {url!r}")
        return cls(parts.netloc, parts.path.strip("/"))


def open_store(settings: Settings, bucket: Bucket) -> S3Store:
    config: dict[str, object] = {"region": settings.s3_region or "us-east-1"}
    client: dict[str, object] = {}
    if settings.s3_endpoint:
        config["endpoint"] = settings.s3_endpoint.rstrip("/")
        config["virtual_hosted_style_request"] = False  # path style: what every non-AWS store takes
        client["allow_http"] = settings.s3_endpoint.startswith("http://")
    key_id, key = secret("AWS_ACCESS_KEY_ID"), secret("AWS_SECRET_ACCESS_KEY")
    if key_id and key:
        config["access_key_id"], config["secret_access_key"] = key_id, key
        token = secret("AWS_SESSION_TOKEN")
        if token:
            config["token"] = token
    return S3Store(
        bucket.bucket, prefix=bucket.prefix or None, config=config, client_options=client
    )


def list_keys(store: S3Store) -> dict[str, None]:
    """Every key under the prefix, content unknown: what a target without a journal holds."""
    try:
        return {meta["path"]: None for batch in obstore.list(store) for meta in batch}
    except Exception as exc:  # obstore's errors name the request, never the credentials
        if "NoSuchBucket" in str(exc):
            return {}  # a store that creates buckets on the first upload (SeaweedFS, MinIO's)
        raise PublishError(f"listing the target failed: {_short(exc)}") from None


def body_of(output: Path, key: str, compress: bool) -> tuple[bytes, dict[str, str]]:
    """The bytes to store for `key` and the attributes they are stored with."""
    try:
        data = (output / key).read_bytes()
    except FileNotFoundError:
        raise PublishError(
            f"{output}/{key} is gone: a build ran meanwhile; publish again"
        ) from None
    except OSError as exc:
        raise PublishError(f"{output}/{key}: {exc.strerror or exc}") from None
    attributes = {"Content-Type": content_type(key), "Cache-Control": cache_control(key)}
    if compress and compressible(key) and len(data) > 256:
        packed = gzip.compress(data, compresslevel=6, mtime=0)
        if len(packed) < len(data):
            data, attributes["Content-Encoding"] = packed, "gzip"
    return data, attributes


@dataclass
class Sent:
    files: int = 0
    bytes: int = 0
    deleted: int = 0


async def run_plan(
    store: S3Store,
    output: Path,
    files: dict[str, str],
    plan: Plan,
    state: State,
    *,
    compress: bool,
    concurrency: int,
    progress: Callable[[Sent], None] = lambda sent: None,
) -> Sent:
    sent = Sent()
    done = {key: asyncio.Event() for key in plan.uploads}
    slots = asyncio.Semaphore(max(1, concurrency))
    for key in plan.uploads:
        state.objects[key] = None  # from here on it may be at the target in any version
    state.save()

    async def upload(key: str) -> None:
        for waited in plan.waits.get(key, ()):
            await done[waited].wait()
        async with slots:
            data, attributes = await asyncio.to_thread(body_of, output, key, compress)
            try:
                await obstore.put_async(store, key, data, attributes=attributes)
            except Exception as exc:
                raise PublishError(f"uploading {key} failed: {_short(exc)}") from None
        state.objects[key] = files[key]
        sent.files += 1
        sent.bytes += len(data)
        state.checkpoint()
        progress(sent)
        done[key].set()

    try:
        async with asyncio.TaskGroup() as group:
            for key in plan.uploads:
                group.create_task(upload(key))
    except* PublishError as failed:
        raise failed.exceptions[0] from None
    finally:
        state.save()
    for start in range(0, len(plan.deletes), DELETE_BATCH):
        batch = plan.deletes[start : start + DELETE_BATCH]
        try:
            await obstore.delete_async(store, batch)
        except Exception as exc:
            raise PublishError(f"deleting {batch[0]}… failed: {_short(exc)}") from None
        for key in batch:
            state.objects.pop(key, None)
        sent.deleted += len(batch)
        state.save()
    return sent


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:400] + ("…" if len(text) > 400 else "")
