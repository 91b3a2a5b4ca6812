"""What a publish does, in what order: the build's manifest against what the target holds.

    site_files(output)       every file of the build with its sha256 (output/manifest.json)
    make_plan(files, held)   uploads: files whose sha the target does not hold (new or changed);
                             deletes: files the target holds that the build no longer has; and
                             for each upload the uploads it must wait for

The order keeps every link whole while a publish runs: a page goes up only after the files it
links to that the target does not hold yet (a new talk's page before the day, the event page
and the talks next to it that now link to it), a Pagefind loader after the new hashed chunks of
its index, and deletes come after every upload. Links are read from
the HTML of the pages being uploaded (href and src, relative or from the root); a link cycle
(previous/next between new talks) is cut where the walk meets it.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import AfaError

from .headers import is_hashed, is_page

MANIFEST = "manifest.json"
# a link within the site: href or src, not to another host (most of a page's links are posts')
LINK = re.compile(rb"""(?:href|src)=["'](?![a-z][a-z0-9+.-]*:|//)([^"'#?]*)""")


class PublishError(AfaError):
    """A publish that cannot start or did not finish: the target and the reason."""


def site_files(output: Path) -> dict[str, str]:
    """{relpath: sha256} of every file the last build made (not the manifest or the build cache)."""
    try:
        manifest = json.loads((Path(output) / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
    except FileNotFoundError:
        raise PublishError(f"no {output}/{MANIFEST}: build the site first (make site)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PublishError(f"{output}/{MANIFEST} is unreadable ({exc}): build again") from None
    if not isinstance(files, dict):
        raise PublishError(f"{output}/{MANIFEST}: 'files' is not a mapping: build again")
    return files


@dataclass
class Plan:
    uploads: list[str]  # in an order that respects `waits`
    waits: dict[str, list[str]] = field(default_factory=dict)  # upload -> uploads it waits for
    deletes: list[str] = field(default_factory=list)
    new: set[str] = field(default_factory=set)  # uploads the target does not hold at all


def make_plan(
    files: dict[str, str], held: dict[str, str | None], read: Callable[[str], bytes]
) -> Plan:
    """`held` is what the target holds: key -> sha256 of its source, or None when its content is
    unknown. `read(key)` gives a page's bytes, for its links."""
    uploading = {key for key, sha in files.items() if held.get(key) != sha}
    new = {key for key in uploading if key not in held}
    # only a link to a file the target does not hold yet can break: those are waited for
    edges = {key: sorted(links_of(key, read, new)) for key in uploading if is_page(key)}
    for key in uploading:
        if "/pagefind/" in key and not is_hashed(key):
            folder = key.rsplit("/pagefind/", 1)[0] + "/pagefind/"
            edges[key] = sorted(k for k in new if k.startswith(folder) and is_hashed(k))
    order, waits = post_order(sorted(uploading, key=_first), edges)
    deletes = sorted(key for key in held if key not in files)
    return Plan(order, waits, deletes, new)


def _first(key: str) -> tuple[int, str]:
    """Walk assets before pages, so the order alone (without waiting) is already a good one."""
    return (1 if is_page(key) else 0, key)


def links_of(key: str, read: Callable[[str], bytes], within: set[str]) -> set[str]:
    """The files in `within` that the page `key` links to."""
    if not key.endswith(".html"):
        return set()
    folder = posixpath.dirname(key)
    found = set()
    for match in LINK.finditer(read(key)):
        href = match.group(1).decode("utf-8", "replace").strip()
        if not href:
            continue
        path = href.lstrip("/") if href.startswith("/") else posixpath.join(folder, href)
        path = posixpath.normpath(path) if path else ""
        path = "" if path == "." else path
        if path == ".." or path.startswith("../"):
            continue  # above the site's root
        target = posixpath.join(path, "index.html") if href.endswith("/") or not path else path
        if target not in within and posixpath.join(target, "index.html") in within:
            target = posixpath.join(target, "index.html")  # a folder linked without its slash
        if target in within and target != key:
            found.add(target)
    return found


def post_order(keys: list[str], edges: dict[str, list[str]]) -> tuple[list[str], dict]:
    """Every key after the keys it points to (a depth-first walk's post-order); an edge back to a
    key still being walked closes a cycle and is dropped. Returns the order and the kept edges."""
    order: list[str] = []
    kept: dict[str, list[str]] = {}
    state: dict[str, int] = {}  # 1 being walked, 2 done
    for root in keys:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(edges.get(root, ())))]
        while stack:
            key, targets = stack[-1]
            for target in targets:
                seen = state.get(target)
                if seen == 1:
                    continue  # a cycle: this edge is not waited on
                kept.setdefault(key, []).append(target)
                if seen is None:
                    state[target] = 1
                    stack.append((target, iter(edges.get(target, ()))))
                    break
            else:
                stack.pop()
                state[key] = 2
                order.append(key)
    return order, kept
