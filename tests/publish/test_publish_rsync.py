"""`python -m sitegen publish` to an rsync target: a local folder, and a real rsync daemon
started by the test (Debian's rsync, installed by `make test`). After every publish the target
holds exactly the site's files; a rebuild sends only what changed, and removals are deleted."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

from core.redisd import free_port, wait_for_port
from sitegen.publish import publish_site
from sitegen.publish.headers import compressible
from tests.conftest import ROOT
from tests.publish.test_publish_objects import manifest, site_bytes


def tree(folder) -> dict[str, bytes]:
    """What the web server serves: each file, and beside each compressible one its .gz copy
    (checked here to hold the same bytes, then left out)."""
    found = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
             if p.is_file()}  # fmt: skip
    for key in [k for k in found if compressible(k)]:
        assert gzip.decompress(found.pop(f"{key}.gz")) == found[key], key
    return found


def test_a_file_rewritten_within_the_same_second_at_the_same_size_is_sent(tmp_path):
    """Bug: rsync's quick check compares whole seconds, so a file the build rewrote within the
    second of the last publish, at the same size, was skipped (the rebuild loop's test caught a
    stale pagefind-entry.json once). Fix: --modify-window=-1, nanoseconds count."""
    from sitegen.publish.rsync import run_rsync

    output, www = tmp_path / "output", tmp_path / "www"
    output.mkdir()
    page = output / "page.html"
    page.write_text("first")
    os.utime(page, ns=(1_790_000_000_100_000_000,) * 2)
    run_rsync(output, f"{www}/")
    page.write_text("again")  # same size, and the same second as the last publish
    os.utime(page, ns=(1_790_000_000_900_000_000,) * 2)
    result = run_rsync(output, f"{www}/")
    assert (www / "page.html").read_text() == "again" and result.files == 1


def test_rsync_to_a_folder_sends_what_changed_and_deletes_what_was_removed(site, tmp_path):
    www = tmp_path / "www"
    settings = site.settings.with_overrides(publish_target=f"{www}/")
    first = publish_site(settings)
    assert tree(www) == site_bytes(site)  # no manifest, no build cache: the site alone
    copies = sum(compressible(key) for key in site_bytes(site))
    assert copies > 100 and first.uploaded == len(site_bytes(site)) + copies
    site.add_session_posts()
    site.rename_talk("t03c", "t03c-moved")
    site.build()
    built = manifest(site)
    report = publish_site(settings)
    assert tree(www) == site_bytes(site)
    changed = len(built["changed"]) + sum(compressible(k) for k in built["changed"])
    assert report.uploaded == changed  # rsync's own count of the files (and copies) it sent
    assert report.deleted >= len(built["removed"]) > 0  # (and the emptied folders)


def test_rsync_to_a_daemon(site, tmp_path):
    module = tmp_path / "module"
    module.mkdir()
    port = free_port()
    conf = tmp_path / "rsyncd.conf"
    conf.write_text(f"pid file = {tmp_path}/rsyncd.pid\nuse chroot = no\n"
                    f"[site]\n  path = {module}\n  read only = no\n"
                    f"  uid = {os.getuid()}\n  gid = {os.getgid()}\n")  # fmt: skip
    daemon = subprocess.Popen(["rsync", "--daemon", "--no-detach", f"--port={port}",
                               "--address=127.0.0.1", f"--config={conf}"])  # fmt: skip
    try:
        wait_for_port(port, 30)
        target = f"rsync://127.0.0.1:{port}/site/"
        env_settings = site.settings.with_overrides(publish_target=target)
        publish_site(env_settings)
        assert tree(module) == site_bytes(site)
        site.add_session_posts()
        site.build()
        command = [sys.executable, "-m", "sitegen", "publish"]
        env = {"AFA_PUBLISH_TARGET": target, "AFA_OUTPUT_DIR": str(site.output),
               "AFA_VAR_DIR": str(site.settings.var_dir), "PATH": "/usr/bin:/bin"}  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                              cwd=ROOT)  # fmt: skip
        assert done.returncode == 0, done.stderr
        changed = manifest(site)["changed"]
        changed = len(changed) + sum(compressible(k) for k in changed)
        assert done.stdout.startswith(f"published to {target}: {changed} files sent")
        assert tree(module) == site_bytes(site)
    finally:
        daemon.terminate()
        daemon.wait(10)


def test_the_rebuild_loop_publishes_after_each_rebuild(site, tmp_path):
    import threading
    import time

    from core.archive import open_archive
    from core.rebuild import request_rebuild
    from sitegen.rebuild_loop import run_rebuild_loop
    from tests.bench.bench_site import EVENT

    www = tmp_path / "www"
    settings = site.settings.with_overrides(publish_target=f"{www}/")
    lines: list[str] = []
    stop = threading.Event()
    worker = threading.Thread(
        target=run_rebuild_loop, args=(settings, EVENT, 0.05, stop, lines.append)
    )
    worker.start()

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 60
        while sum(line.startswith("published to ") for line in lines) < count:
            assert time.monotonic() < deadline and worker.is_alive(), lines
            time.sleep(0.05)

    try:
        wait_for(1)  # after the initial build
        assert tree(www) == site_bytes(site)
        site.add_session_posts()
        db = open_archive(settings.archive_path)
        request_rebuild(db, EVENT, "new posts")
        db.close()
        wait_for(2)
    finally:
        stop.set()
        worker.join(30)
    assert tree(www) == site_bytes(site)
    rebuilt = next(i for i, line in enumerate(lines) if "moderation asked" in line)
    assert lines[rebuilt + 1].startswith(f"published to {www}/: ")
