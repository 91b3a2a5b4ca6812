"""`make bench-site`: sitegen on generated events of 100,000 and 1,000,000 posts (3 days, 4 rooms,
60 talks).

Measures, each step in its own child process (peak RSS from resource.getrusage):
  full      a first build into an empty output/
            (peak memory: the build's process and its render workers together, render_pool.py)
  session   a rebuild after one session ended, with 300 posts added within that session; three
            sessions one after another, and the figure is their median
  nochange  a rebuild with nothing changed
  floor     the same pages rendered by one plain Jinja2 loop and written out (no reading, no
            cache, no writer), in the same run; the full build's ratio to it is printed
  search    a session's search update: Pagefind indexing the block of posts the session's new
            posts went into (sitegen/search.py), as the rebuild does it
Targets per size (TARGETS): at 1,000,000 posts (issue 12) full <= 1 x floor, session <= 1 s,
nochange <= 0.2 s, peak memory <= 1 GB, search <= 5 s; at 100,000 the targets of issue 4.
The builds themselves run without Pagefind (search=False); its cost is the `search` row.
Figures go to stdout and var/bench/site.json (one entry per size).

    .venv/bin/python tests/bench/bench_site.py [--posts 100000,1000000] [--keep DIR]
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
TARGETS = {
    100_000: {"ratio": 2.0, "session": 1.0, "nochange": 0.5, "rss_mb": 1024, "search": 5.0},
    1_000_000: {"ratio": 1.0, "session": 1.0, "nochange": 0.2, "rss_mb": 1024, "search": 5.0},
}


SESSIONS = 3  # sessions added and rebuilt one after another; the figure is their median


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
    from sitegen import render_pool
    from sitegen.build import build_site

    settings = settings_for(work)
    now = datetime(2026, 7, 1, tzinfo=UTC)
    started = time.perf_counter()
    if step == "floor":
        seconds, pages = floor(settings, now)
        return {"seconds": seconds, "pages": pages, "rss_mb": rss_mb()}
    if step == "search":
        return search_session(settings)
    report = build_site(settings, now=now, search=False)
    workers = sum(render_pool.peak_kb) / 1024  # a first build's render workers (render_pool.py)
    return {"seconds": time.perf_counter() - started, "pages": report.pages, "rendered": report.rendered,
            "written": len(report.written), "rss_mb": rss_mb() + workers, "workers_mb": workers}  # fmt: skip


def search_session(settings: Settings) -> dict:
    """Index the block of posts the session's posts went into, the way the rebuild does it (read
    its rows, make each post's entry, run Pagefind), and the block before it, which is full: the
    most a session's update can cost (its posts may land in a nearly full block)."""
    from core.events import load_events
    from sitegen import search

    [event] = load_events(settings.content_dir)
    db = open_archive(settings.archive_path)
    top = db.execute("SELECT max(id) FROM items WHERE event = ?", [EVENT]).fetchone()[0]
    last = search.block_of(top)
    session = index_block_of(db, event, last)
    full = index_block_of(db, event, last - 1) if last > 0 else session
    db.close()
    return {**session, "full": full, "rss_mb": rss_mb()}


def index_block_of(db, event, block: int) -> dict:
    from sitegen import search
    from sitegen.posts import anchor_of, decode, place_of

    started = time.perf_counter()
    rows = db.execute(
        "SELECT id, data, seq FROM items WHERE event = ? AND status = 'visible' AND id >= ?"
        " AND id < ? ORDER BY id",
        [EVENT, block * search.BLOCK, (block + 1) * search.BLOCK],
    ).fetchall()
    entries = []
    for _, data, seq in rows:
        item = decode(data, seq)
        if not item.author.noindex:
            photos = any(m.kind == "image" for m in item.media) and not item.sensitive
            entries.append(
                search.entry(event, item, anchor_of(item.uri), place_of(event, item), photos)
            )
    files = search.index_block(entries, lambda path, data: None)
    return {"seconds": time.perf_counter() - started, "posts": len(entries), "files": files}


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
    """This process's peak resident memory. Linux's ru_maxrss carries the parent's over fork and
    exec, so a step's child would report the parent's peak (it holds every generated post, 2.5 GB
    at a million) whatever the build used: the kernel's own high-water mark (VmHWM) is read."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(step: str, work: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", step, "--work", str(work)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{step} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", default="100000,1000000", help="Sizes, comma-separated.")
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
    sizes = [int(n) for n in args.posts.split(",")]
    figures = {}
    for posts in sizes:
        keep = args.keep / str(posts) if args.keep and len(sizes) > 1 else args.keep
        figures[str(posts)] = run_size(posts, keep, not args.no_search)
    print_table(figures)
    out = args.json
    out.parent.mkdir(parents=True, exist_ok=True)
    single = figures[str(sizes[0])] if len(sizes) == 1 else figures
    out.write_text(json.dumps(single, indent=1) + "\n")
    print(f"wrote {out}")


def run_size(posts: int, keep: Path | None, search: bool) -> dict:
    """Every step at one size, in a work folder of its own."""
    work = keep or Path(tempfile.mkdtemp(prefix="afa-bench-site-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    targets = TARGETS.get(posts, TARGETS[1_000_000] if posts > 100_000 else TARGETS[100_000])
    try:
        started = time.perf_counter()
        write_content(work / "content")
        rng = random.Random(4)
        seq = save(work / "archive.db", make_items(posts, rng), 0)
        print(f"{posts} posts: generated with 60 talks in {time.perf_counter() - started:.1f} s",
              flush=True)  # fmt: skip
        results = {"posts": posts, "full": run_child("full", work)}
        full = results["full"]
        print(f"  full build:          {full['seconds']:.2f} s, peak {full['rss_mb']:.0f} MB"
              f" ({full['workers_mb']:.0f} MB of it the render workers),"
              f" {full['pages']} pages", flush=True)  # fmt: skip
        results["floor"] = run_child("floor", work)
        print(f"  floor (plain loop):  {results['floor']['seconds']:.2f} s", flush=True)
        runs = []
        for k in range(SESSIONS):  # the median of a few: one rebuild of a second is easily jolted
            items = make_items(300, rng, first=posts + 300 * k, where=(1, 2))
            seq = save(work / "archive.db", items, seq)
            runs.append(run_child("session", work))
        session = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
        results["session"] = {**session, "runs": [r["seconds"] for r in runs]}
        print(f"  one-session rebuild: {session['seconds']:.2f} s, the median of {len(runs)}"
              f" sessions ({', '.join(f'{r:.2f}' for r in results['session']['runs'])} s;"
              f" {session['rendered']} rendered, {session['written']} written),"
              f" peak {max(r['rss_mb'] for r in runs):.0f} MB", flush=True)  # fmt: skip
        results["nochange"] = run_child("nochange", work)
        print(f"  no-change rebuild:   {results['nochange']['seconds']:.2f} s", flush=True)
        if search:
            results["search"] = run_child("search", work)
            found = results["search"]
            print(f"  search, a session's update: {found['seconds']:.2f} s ({found['posts']} posts"
                  f" in its block); a full block: {found['full']['seconds']:.2f} s"
                  f" ({found['full']['posts']} posts)", flush=True)  # fmt: skip
        results["ratio"] = full["seconds"] / results["floor"]["seconds"]
        peak = max(r["rss_mb"] for r in (full, *runs, results["nochange"]))
        met = {
            "ratio": results["ratio"] <= targets["ratio"],
            "session": session["seconds"] <= targets["session"],
            "nochange": results["nochange"]["seconds"] <= targets["nochange"],
            "rss_mb": peak <= targets["rss_mb"],
        }
        if search:
            worst = max(results["search"]["seconds"], results["search"]["full"]["seconds"])
            met["search"] = worst <= targets["search"]
        results.update(peak_rss_mb=peak, targets=targets, met=met)
        return results
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def print_table(figures: dict) -> None:
    """The rows of issue 12, one column per size, each with its target."""
    rows = [
        ("full build", lambda r: f"{r['full']['seconds']:.1f} s ({r['ratio']:.2f} x floor)",
         lambda t: f"<= {t['ratio']:g} x floor", "ratio"),
        ("one-session rebuild", lambda r: f"{r['session']['seconds']:.2f} s ({r['session']['rendered']} pages)",
         lambda t: f"<= {t['session']:g} s", "session"),
        ("no-change rebuild", lambda r: f"{r['nochange']['seconds']:.2f} s",
         lambda t: f"<= {t['nochange']:g} s", "nochange"),
        ("peak memory", lambda r: f"{r['peak_rss_mb']:.0f} MB", lambda t: f"<= {t['rss_mb']:g} MB", "rss_mb"),
        ("search, a session's update", lambda r: (f"{r['search']['seconds']:.2f} s, a full block "
         f"{r['search']['full']['seconds']:.2f} s") if "search" in r else "-",
         lambda t: f"<= {t['search']:g} s", "search"),
    ]  # fmt: skip
    sizes = list(figures)
    print("\n| step | " + " | ".join(f"{int(n):,} posts (target)" for n in sizes) + " |")
    print("| --- |" + " --- |" * len(sizes))
    for name, value, target, key in rows:
        cells = []
        for n in sizes:
            r = figures[n]
            verdict = "" if key not in r["met"] else (" met" if r["met"][key] else " NOT MET")
            cells.append(f"{value(r)} ({target(r['targets'])}{verdict})")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
