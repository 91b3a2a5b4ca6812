"""Build the golden site tests/sitegen/sites/basic (content + items.json) and, when run as a script,
write it to tests/sitegen/expected/basic/ so the reviewer reads the diff.

    .venv/bin/python tests/sitegen/update_expected.py
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from datetime import UTC, datetime  # noqa: E402

from core.archive import open_archive  # noqa: E402
from core.items import Author, Item, Media, item_to_dict, parse_time  # noqa: E402
from core.settings import Settings  # noqa: E402
from sitegen.build import build_site  # noqa: E402

SITE = HERE / "sites" / "basic"
EXPECTED = HERE / "expected" / "basic"
NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)  # the day after the event: it is past


def golden_items() -> list[Item]:
    items = []
    for row in json.loads((SITE / "items.json").read_text()):
        n = row["n"]
        items.append(
            Item(
                uri=f"https://social.example/users/u{n}/statuses/{n}",
                source="mastodon",
                origin="social.example",
                local_id=str(n),
                url=f"https://social.example/@u{n}/{n}",
                created_at=parse_time(row["at"]),
                html=row["html"],
                tags=tuple(row["tags"]),
                author=Author(
                    id=f"https://social.example/users/u{n}",
                    handle=f"@u{n}@social.example",
                    name=f"Person <{n}>",
                    url=f"https://social.example/@u{n}",
                    noindex=row.get("noindex", False),
                ),
                text=row.get("text", ""),
                links=tuple(row.get("links", [])),
                boosts=row.get("boosts", 0),
                spoiler=row.get("spoiler", ""),
                sensitive=row.get("sensitive", False),
                media=tuple(Media(**m) for m in row.get("media", [])),
                likes=row.get("likes", 0),
                edited_at=parse_time(row.get("edited_at")),
            )
        )
    return items


def build_golden(work: Path) -> Path:
    """Build the golden site under work/ and return its output folder."""
    db = open_archive(work / "archive.db")
    for seq, item in enumerate(golden_items(), start=1):
        db["items"].insert(
            {
                "event": "tiny-2026",
                "uri": item.uri,
                "source": item.source,
                "origin": item.origin,
                "local_id": item.local_id,
                "created_at": item_to_dict(item)["created_at"],
                "author_id": item.author.id,
                "data": json.dumps(item_to_dict(item)),
                "first_seen": item_to_dict(item)["created_at"],
                "seq": seq,
            }
        )
        db["sequences"].upsert({"event": "tiny-2026", "last_seq": seq}, pk="event")
    db.close()
    settings = Settings(
        content_dir=SITE / "content",
        archive_path=work / "archive.db",
        output_dir=work / "output",
        var_dir=work / "var",
        live_url="https://live.example",
        base_url="https://feed.example",
    )
    build_site(settings, now=NOW, search=False)  # Pagefind's index is tested apart
    return settings.output_dir


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        output = build_golden(Path(tmp))
        shutil.rmtree(EXPECTED, ignore_errors=True)
        shutil.copytree(output, EXPECTED)
    print(f"wrote {EXPECTED}; review it with: git diff --stat -- {EXPECTED}")  # noqa: T201
