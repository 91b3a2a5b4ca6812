"""`make bench-site`: sitegen on a generated event of 100,000 posts, 3 days, 4 rooms, 60 talks.

Measures, each step in its own child process (peak RSS from resource.getrusage):
  full      a first build into an empty output/
  session   a rebuild after one session ended, with posts added within that session
  nochange  a rebuild with nothing changed
  floor     the same pages rendered by one plain Jinja2 loop and written out (no reading, no
            cache, no writer), in the same run; the full build's ratio to it is printed
Targets: full <= 2 x floor, session <= 1 s, nochange <= 0.5 s, peak memory <= 1 GB.
Figures go to stdout and var/bench/site.json. Pagefind is left out of the builds (search=False): it
indexes the whole event each time an archive page changes, so it is timed on its own line
(`search`, one index of the full build's archive pages), not counted against the targets.

    .venv/bin/python tests/bench/bench_site.py [--posts 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from core.archive import open_archive  # noqa: E402
from core.items import Author, Item, Media, format_time, item_to_dict  # noqa: E402
from core.settings import Settings  # noqa: E402

EVENT = "bench-2026"
TZ = "Europe/Berlin"
DAYS = ["2026-06-16", "2026-06-17", "2026-06-18"]
ROOMS = ["a", "b", "c", "d"]
SLOTS = [("09:00", "10:00"), ("10:30", "11:30"), ("12:30", "13:30"), ("14:00", "15:00"), ("15:30", "16:30")]  # fmt: skip
TARGETS = {"ratio": 2.0, "session": 1.0, "nochange": 0.5, "rss_mb": 1024}


def write_content(folder: Path) -> None:
    """3 days x 5 sessions x 4 rooms = 60 talks, a break between sessions."""
    event = folder / EVENT
    event.mkdir(parents=True)
    (folder / "site.yaml").write_text("title: Bench\nbase_url: https://bench.example\n")
    rooms = "\n".join(
        f"  - {{slug: {r}, name: Room {r.upper()}, hashtag: bench{r}}}" for r in ROOMS
    )
    (event / "event.yaml").write_text(
        f"name: Bench Conf\nstart: {DAYS[0]}\nend: {DAYS[-1]}\ntimezone: {TZ}\nvenue: Hall\n"
        f"hashtags: [bench26]\ngrace_minutes: 10\nrooms:\n{rooms}\n"
    )
    (event / "description.md").write_text("A generated event for the site benchmark.\n")
    lines = ["days:"]
    for d, day in enumerate(DAYS):
        lines += [f"  - date: {day}", f"    title: Day {d + 1}", "    sessions:"]
        for s, (start, end) in enumerate(SLOTS):
            lines += [f"      - slug: d{d}s{s}", f"        title: Session {s + 1}",
                      f'        start: "{start}"', f'        end: "{end}"', "        presentations:"]  # fmt: skip
            for r in ROOMS:
                lines.append(
                    f'          - {{slug: t{d}{s}{r}, title: "Talk {d}{s}{r}", speakers: [Speaker {(d * 20 + s * 4 + ord(r)) % 37}],'
                    f' room: {r}, start: "{start}", end: "{end}", hashtag: bt{d}{s}{r}}}'
                )
        lines.append("    breaks:")
        for s in range(len(SLOTS) - 1):
            lines.append(
                f'      - {{slug: d{d}b{s}, title: Break, start: "{SLOTS[s][1]}", end: "{SLOTS[s + 1][0]}"}}'
            )
    (event / "schedule.yaml").write_text("\n".join(lines) + "\n")


def talk_window(d: int, s: int) -> tuple[datetime, datetime]:
    tz = ZoneInfo(TZ)
    day = datetime.fromisoformat(DAYS[d])
    start, end = (
        datetime.combine(day.date(), datetime.strptime(t, "%H:%M").time(), tz) for t in SLOTS[s]
    )
    return start.astimezone(UTC), end.astimezone(UTC)


def make_items(
    n: int, rng: random.Random, first: int = 0, where: tuple[int, int] | None = None
) -> list[Item]:
    authors = [Author(id=f"https://m.example/users/u{i}", handle=f"@u{i}@m.example", name=f"Person {i}",
                      url=f"https://m.example/@u{i}", avatar=f"https://m.example/a/{i}.png", noindex=i % 50 == 0)
               for i in range(3000)]  # fmt: skip
    items = []
    for k in range(first, first + n):
        d, s = where or (rng.randrange(3), rng.randrange(len(SLOTS)))
        start, end = talk_window(d, s)
        at = start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))
        r = rng.choice(ROOMS)
        words = " ".join(
            rng.choice(("great", "talk", "sqlite", "jinja", "cdn", "stream", "slide", "demo"))
            for _ in range(25)
        )
        media = (
            (
                Media(
                    "image",
                    f"https://img.example/{k}.jpg",
                    alt=f"Slide {k}",
                    width=1200,
                    height=800,
                ),
            )
            if k % 12 == 0
            else ()
        )
        items.append(Item(
            uri=f"https://m.example/users/u{k % 3000}/statuses/{k}", source="mastodon", origin="m.example",
            local_id=str(k), url=f"https://m.example/@u{k % 3000}/{k}", created_at=at, author=authors[k % 3000],
            html=f"<p>{words} #bt{d}{s}{r}</p>", text=f"{words} #bt{d}{s}{r}", tags=(f"bt{d}{s}{r}", "bench26"),
            media=media, links=(f"https://link.example/{k % 400}",) if k % 5 == 0 else (),
            boosts=k % 17, likes=k % 23,
        ))  # fmt: skip
    return sorted(items, key=lambda i: i.created_at)


def save(path: Path, items: list[Item], seq: int) -> int:
    db = open_archive(path)
    rows, changes = [], []
    for item in items:
        seq += 1
        when = format_time(item.created_at)
        rows.append((EVENT, item.uri, item.source, item.origin, item.local_id, when, item.author.id,
                     json.dumps(item_to_dict(item), separators=(",", ":")), when, seq))  # fmt: skip
        changes.append((EVENT, seq, "post", item.uri, when, "{}"))
    with db.conn:
        db.conn.execute("BEGIN")
        db.conn.executemany("INSERT INTO items (event, uri, source, origin, local_id, created_at, author_id,"
                            " data, first_seen, seq) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)  # fmt: skip
        db.conn.executemany("INSERT INTO changes VALUES (?,?,?,?,?,?)", changes)
        db.conn.execute("INSERT INTO sequences VALUES (?, ?) ON CONFLICT (event) DO UPDATE SET last_seq = excluded.last_seq", [EVENT, seq])  # fmt: skip
        db.conn.execute("COMMIT")
    db.close()
    return seq


def settings_for(work: Path) -> Settings:
    return Settings(content_dir=work / "content", archive_path=work / "archive.db",
                    output_dir=work / "output", var_dir=work / "var", base_url="https://bench.example")  # fmt: skip


def child(step: str, work: Path) -> dict:
    """One measured step, run in a fresh process so that maxrss is its own."""
    from sitegen.build import build_site

    settings = settings_for(work)
    now = datetime(2026, 7, 1, tzinfo=UTC)
    started = time.perf_counter()
    if step == "floor":
        seconds, pages = floor(settings, now)
        return {"seconds": seconds, "pages": pages, "rss_mb": rss_mb()}
    if step == "search":
        from sitegen.search import index_event

        files = index_event(settings.output_dir, EVENT, lambda path, data: None)
        return {"seconds": time.perf_counter() - started, "files": files, "rss_mb": rss_mb()}
    report = build_site(settings, now=now, search=False)
    return {"seconds": time.perf_counter() - started, "pages": report.pages, "rendered": report.rendered,
            "written": len(report.written), "rss_mb": rss_mb()}  # fmt: skip


def floor(settings: Settings, now: datetime) -> tuple[float, int]:
    """The same pages, rendered by one plain Jinja2 loop and written out; reading is not timed."""
    import jinja2

    from core.events import load_events, load_site
    from sitegen import render
    from sitegen.build import plan, read_archive

    site, events = load_site(settings.content_dir), load_events(settings.content_dir)
    datas = read_archive(settings, events, lambda line: None)
    pages = [p for family in plan(settings, site, datas, now) for p in family]
    contexts = [
        (p, p.context() if p.body is None else None) for p in pages
    ]  # arranging data is not rendering
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(render.TEMPLATES), autoescape=True)
    whole = datas[0].store.get if datas else None
    env.filters.update(render.make_env().filters)
    env.globals.update(render.make_env(whole=lambda post: whole(post[0])).globals)
    out = settings.output_dir.parent / "floor"
    static = {
        "style.css": "static/style.css",
        "live.js": "static/live.js",
        "search.js": "static/search.js",
    }
    started = time.perf_counter()
    for page, context in contexts:
        target = out / page.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if page.body is not None:
            target.write_bytes(page.body())
        else:
            html = env.get_template(page.template).render(
                {**context, "root": "../" * page.path.count("/"), "static": static, "canonical": ""}
            )
            target.write_text(html, encoding="utf-8")
    return time.perf_counter() - started, len(pages)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(step: str, work: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", step, "--work", str(work)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{step} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--child")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--keep", type=Path, help="Build here and keep it, instead of a temp dir.")
    parser.add_argument("--no-search", action="store_true", help="Do not time Pagefind.")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "var" / "bench" / "site.json", help="Figures to here."
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.work)))
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="afa-bench-site-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        started = time.perf_counter()
        write_content(work / "content")
        rng = random.Random(4)
        seq = save(work / "archive.db", make_items(args.posts, rng), 0)
        print(
            f"generated {args.posts} posts, 60 talks in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        results = {"posts": args.posts, "full": run_child("full", work)}
        print(
            f"full build:        {results['full']['seconds']:.2f} s, peak {results['full']['rss_mb']:.0f} MB, {results['full']['pages']} pages",
            flush=True,
        )
        results["floor"] = run_child("floor", work)
        print(
            f"floor (plain loop): {results['floor']['seconds']:.2f} s, {results['floor']['pages']} pages",
            flush=True,
        )
        seq = save(work / "archive.db", make_items(300, rng, first=args.posts, where=(1, 2)), seq)
        results["session"] = run_child("session", work)
        print(
            f"one-session rebuild: {results['session']['seconds']:.2f} s ({results['session']['rendered']} rendered, {results['session']['written']} written)",
            flush=True,
        )
        results["nochange"] = run_child("nochange", work)
        print(f"no-change rebuild: {results['nochange']['seconds']:.2f} s", flush=True)
        if not args.no_search:
            results["search"] = run_child("search", work)
            print(
                f"search (Pagefind over every archive page, not in the targets): "
                f"{results['search']['seconds']:.2f} s, {results['search']['files']} files",
                flush=True,
            )
        results["ratio"] = results["full"]["seconds"] / results["floor"]["seconds"]
        peak = max(r["rss_mb"] for r in (results["full"], results["session"], results["nochange"]))
        met = {
            "ratio": results["ratio"] <= TARGETS["ratio"],
            "session": results["session"]["seconds"] <= TARGETS["session"],
            "nochange": results["nochange"]["seconds"] <= TARGETS["nochange"],
            "rss_mb": peak <= TARGETS["rss_mb"],
        }
        results.update(peak_rss_mb=peak, targets=TARGETS, met=met)
        print(
            f"full / floor: {results['ratio']:.2f} (target <= 2); peak memory {peak:.0f} MB (target <= 1024)"
        )
        print("targets met: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in met.items()))
        out = args.json
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {out}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
