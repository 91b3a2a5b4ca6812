"""build_site() end to end: the sample content plus a small real archive, built into tmp output."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.archive import open_archive
from sitegen import writer as writer_module
from sitegen.build import build_site
from sitegen.cli import cli
from sitegen.writer import KeptFile, Writer, WriterError

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


class Scan(HTMLParser):
    """Collects what matters from a page: post uris, scripts, event-handler attributes, URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.uris: list[str] = []
        self.tags: list[str] = []
        self.bad: list[str] = []
        self.main: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "article" and "data-uri" in attrs:
            self.uris.append(attrs["data-uri"])
        if tag == "main":
            self.main = attrs
        if tag in ("iframe", "object", "embed") or (
            tag == "script"
            and not (attrs.get("src") or "")
            .split("?")[0]
            .endswith(
                ("/live.js", "/search.js", "/pagefind-ui.js", "/board.js", "/wall.js", "/dom.js")
            )
        ):
            self.bad.append(f"<{tag}>")
        for name, value in attrs.items():
            if name.startswith("on"):
                self.bad.append(f"{tag} {name}")
            if name in ("href", "src", "poster") and (value or "").strip().lower().startswith(
                ("javascript:", "data:")
            ):
                self.bad.append(f"{tag} {name}={value}")


def scan(path: Path) -> Scan:
    parser = Scan()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def at(day, hh, mm, ss=0):
    return datetime(2026, 10, day, hh, mm, ss, tzinfo=UTC)


@pytest.fixture
def posts(sg):
    """About 600 posts over both days with mixed tags, every 3 minutes and 20 seconds."""
    items = []
    for n, t in enumerate(sg.sample_times(step_minutes=3)):
        tags = sg.TAG_SETS[n % len(sg.TAG_SETS)]
        items.append(
            sg.make_item(n, t + timedelta(seconds=20 * (n % 3)), [x.lower() for x in tags])
        )
    return items


def hostile_items(sg):
    evil = sg.Author(
        id="https://evil.example/u",
        handle=HOSTILE,
        name=HOSTILE,
        url="javascript:alert(3)",
        avatar="javascript:alert(4)",
    )
    media = (
        sg.Media("image", "javascript:alert(5)", alt=HOSTILE),
        sg.Media("image", "https://img.example/a.jpg", preview_url="data:text/html,x", alt=HOSTILE),
        sg.Media("video", "https://img.example/v.mp4", alt=HOSTILE),
    )
    html = (
        '<p>hi</p><script>alert(6)</script><img src=x onerror="alert(7)">'
        '<a href="javascript:alert(8)" onclick="alert(9)">j</a><iframe src="https://evil.example"></iframe>'
        "<svg onload=alert(10)></svg>"
    )
    return [
        sg.make_item(
            9001,
            at(24, 7, 10),
            ["nwkeynote1"],
            author=evil,
            html=html,
            spoiler=HOSTILE,
            media=media,
            url="javascript:alert(11)",
            reply_to="javascript:alert(12)",
        ),
        sg.make_item(
            9002,
            at(24, 12, 0),
            [],
            author=evil,
            html=html,
            sensitive=True,
            media=media,
            edited_at=at(24, 12, 5),
            quote_of=HOSTILE,
        ),
    ]


@pytest.fixture
def built(make_settings, sg, posts):
    settings = make_settings()
    db = open_archive(settings.archive_path)
    sg.save_items(db, posts + hostile_items(sg))
    hidden_author = sg.Author(id="https://x.example/h", name="Hidden Person", hidden=True)
    sg.save_items(
        db,
        [sg.make_item(9100, at(24, 7, 15), author=hidden_author, uri="https://x.example/hidden")],
    )
    sg.save_items(
        db, [sg.make_item(9101, at(24, 7, 16), uri="https://x.example/deleted")], status="deleted"
    )
    db.close()
    report = build_site(settings)
    return settings, report


def test_each_talk_and_break_page_lists_exactly_its_posts(built, posts, reference, sg):
    settings, report = built
    event_dir = settings.output_dir / sg.EVENT
    shown = posts + hostile_items(sg)  # not the hidden author's post, not the deleted one
    expected: dict[str, list[str]] = {}
    for item in sorted(shown, key=lambda i: i.created_at):
        expected.setdefault(reference.place(item.created_at, item.tags), []).append(item.uri)
    assert hostile_items(sg)[0].uri in expected["opening-keynote"]
    talks = sorted(p.parent.name for p in (event_dir / "talks").glob("*/index.html"))
    assert len(talks) == 21
    for slug in talks:
        assert scan(event_dir / "talks" / slug / "index.html").uris == expected.get(slug, []), slug
    breaks = sorted(p.parent.name for p in (event_dir / "breaks").glob("*/index.html"))
    assert len(breaks) == 6
    for slug in breaks:
        assert scan(event_dir / "breaks" / slug / "index.html").uris == expected.get(slug, []), slug
    assert report.posts == len(shown)
    assert report.unplaced == len(expected[None])


def test_hostile_markup_never_becomes_markup(built):
    settings, _ = built
    files = [p for p in settings.output_dir.rglob("*") if p.is_file() and "pagefind" not in p.parts]
    assert len(files) > 30
    pages = [p for p in files if p.suffix == ".html"]
    found = {str(p.relative_to(settings.output_dir)): scan(p).bad for p in pages}
    assert {k: v for k, v in found.items() if v} == {}
    for path in files:
        if path.suffix == ".gz":
            text = gzip.decompress(path.read_bytes()).decode("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        assert "Hidden Person" not in text and "x.example/deleted" not in text, path
        if path.suffix in (
            ".jsonl",
            ".gz",
        ):  # data, not markup: plain-text fields keep what was written
            for line in text.splitlines():
                assert "<script" not in json.loads(line)["html"], path
            continue
        assert "<script>alert" not in text and "javascript:alert" not in text, path
    talk = (settings.output_dir / "northwind-2026/talks/opening-keynote/index.html").read_text()
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in talk  # shown, as text
    assert '<details class="cw"><summary>&#34;&gt;&lt;script&gt;' in talk


def test_building_twice_is_byte_identical(built):
    settings, first = built
    before = {p: p.read_bytes() for p in settings.output_dir.rglob("*") if p.is_file()}
    second = build_site(settings)
    after = {p: p.read_bytes() for p in settings.output_dir.rglob("*") if p.is_file()}
    manifest = settings.output_dir / "manifest.json"
    assert {p: b for p, b in after.items() if p != manifest} == {
        p: b for p, b in before.items() if p != manifest
    }
    assert first.search > 0 and second.search == first.search
    assert len(first.written) == first.pages + first.static + first.search
    assert second.written == [] and second.rendered == 0
    assert second.unchanged == second.pages + second.static + second.search
    data = json.loads(manifest.read_text())
    assert data["changed"] == [] and json.loads(before[manifest])["files"] == data["files"]
    assert "northwind-2026/live/index.html" in data["files"]


def test_live_page_carries_the_stream_and_newest_posts_first(built, posts):
    settings, _ = built
    page = scan(settings.output_dir / "northwind-2026/live/index.html")
    assert page.main["data-stream"] == "http://127.0.0.1:8001/live/northwind-2026/stream"
    assert int(page.main["data-after"]) == len(posts) + 2 + 2  # the archive's last change
    assert page.main["data-tz"] == "Europe/Amsterdam"
    newest = sorted(posts, key=lambda i: i.created_at, reverse=True)
    assert page.uris[:10] == [i.uri for i in newest[:10]]
    assert len(page.uris) == settings.live_inline_posts


def test_writer_refuses_paths_outside_output_and_double_writes(tmp_path):
    writer = Writer(tmp_path / "out")
    for bad in ("../evil.html", "a/../../evil.html", "/etc/passwd", "", "a/..", "..\\x"):
        with pytest.raises(WriterError):
            writer.write_file(bad, "x")
    assert not (tmp_path / "evil.html").exists()
    assert writer.write_file("a/index.html", "x") is True
    with pytest.raises(WriterError, match="written twice"):
        writer.write_file("a/./index.html", "y")
    assert Writer(tmp_path / "out").write_file("a/index.html", "x") is False


def test_writer_makes_kept_files_beside_the_build_and_settles_them_before_the_manifest(tmp_path):
    """write_later: the download is made and linked in the writer's thread; the build's thread
    learns whether it changed at settle(), and the manifest never names a file not yet made."""
    cache = tmp_path / "cache"
    cache.mkdir()
    made, told = [], []

    def kept(name: str, body: bytes) -> KeptFile:
        def make() -> None:  # no sha256 given: the writer hashes the file
            (cache / name).write_bytes(body)

        return KeptFile(cache / name, make, lambda: made.append(name))

    writer = Writer(tmp_path / "out")
    writer.write_later("e/posts.jsonl.gz", kept("a.bin", b"one"), told.append)
    with pytest.raises(WriterError, match="written twice"):
        writer.write_file("e/posts.jsonl.gz", "again")
    writer.write_manifest()
    assert told == [True] and made == ["a.bin"]
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["files"]["e/posts.jsonl.gz"] == hashlib.sha256(b"one").hexdigest()
    assert (tmp_path / "out/e/posts.jsonl.gz").read_bytes() == b"one"

    again = Writer(tmp_path / "out")
    assert again.write_file("e/posts.jsonl.gz", kept("b.bin", b"one")) is False

    def broken() -> None:
        raise OSError("disk full")

    failing = Writer(tmp_path / "out")
    failing.write_later("e/posts.jsonl.gz", KeptFile(cache / "c.bin", broken), told.append)
    failing.write_later("e/other.jsonl", kept("d.bin", b"two"), told.append)
    with pytest.raises(OSError, match="disk full"):
        failing.settle()
    assert told == [True]  # neither file told as written
    assert failing._pool is None  # the thread ended: nothing writes after a failed build


def test_writer_holds_few_files_waiting_and_tells_each_in_order(tmp_path, monkeypatch):
    """Pages go to the writer's thread too: at most PENDING wait (a full build renders faster
    than it could hold every page's bytes), each is told once, in the order it was handed in."""
    monkeypatch.setattr(writer_module, "PENDING", 2)
    writer, told = Writer(tmp_path), []
    for n in range(20):
        writer.write_later(f"p{n}/index.html", f"page {n}", lambda changed, n=n: told.append(n))
        assert len(writer._later) <= 2
    writer.write_manifest()
    assert told == list(range(20))
    monkeypatch.setattr(writer_module, "PENDING_BYTES", 10)  # and by the bytes they hold
    again = Writer(tmp_path / "again")
    for n in range(5):
        again.write_later(f"q{n}.html", b"8 bytes!", lambda changed: None)
        assert len(again._later) == 1 and again._held == 8
    again.settle()
    assert again._held == 0 and (tmp_path / "again/q4.html").read_bytes() == b"8 bytes!"
    assert (tmp_path / "p19/index.html").read_text() == "page 19"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["files"]["p7/index.html"] == hashlib.sha256(b"page 7").hexdigest()
    assert len(manifest["changed"]) == 20


def test_writer_removes_what_an_earlier_build_wrote_and_this_one_did_not(tmp_path):
    first = Writer(tmp_path)
    first.write_file("old/index.html", "old")
    first.write_file("keep.html", "k")
    first.write_manifest()
    (tmp_path / "mine.txt").write_text("not the writer's")
    second = Writer(tmp_path)
    second.write_file("keep.html", "k")
    second.write_manifest()
    assert second.removed == ["old/index.html"] and not (tmp_path / "old/index.html").exists()
    assert (tmp_path / "mine.txt").exists()


BROKEN = [
    (
        'start: "10:30"\n            end: "11:15"\n            hashtag: nwsqlite',
        'start: "1O:30"\n            end: "11:15"\n            hashtag: nwsqlite',
        "schedule.yaml:{line}: 'start' is not a time of day (HH:MM): '1O:30'",
    ),
    (
        'start: "11:30"\n            end: "12:15"\n          - slug: designing-for-phones',
        'start: "11:30"\n            end: "11:00"\n          - slug: designing-for-phones',
        "schedule.yaml:{line}: end 11:00 is not after start 11:30",
    ),
    (
        'room: garden\n            start: "13:15"',
        'room: attic\n            start: "13:15"',
        "schedule.yaml:{line}: unknown room 'attic' (rooms: garden, main)",
    ),
    (
        'room: main\n            start: "14:15"',
        'room: main\n            start: "13:45"',
        "schedule.yaml:{line}: 'observability-on-a-budget' overlaps 'typed-python-in-practice' in room 'main'",
    ),
]


def line_of(text: str, needle: str, offset: int) -> int:
    return text[: text.index(needle)].count("\n") + 1 + offset


def test_check_content_lists_every_mistake_with_path_and_line(tmp_path, monkeypatch, sg):
    content = tmp_path / "content"
    shutil.copytree(sg.SAMPLE.parent, content)
    schedule = content / sg.EVENT / "schedule.yaml"
    text = schedule.read_text()
    expected = []
    for old, new, message in BROKEN:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
        key = "end" if "not after" in message else "room" if "unknown room" in message else "start"
        offset = new.split("\n").index(
            next(x for x in new.split("\n") if x.strip().startswith(key))
        )
        expected.append(message.format(line=line_of(text, new, offset)))
    schedule.write_text(text)
    second = content / "other-2027"
    second.mkdir()
    (second / "event.yaml").write_text("name: Other\nstart: 2027-01-01\nend: [2027\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AFA_CONTENT_DIR", str(content))
    result = CliRunner().invoke(cli, ["check-content"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    for message in expected:
        assert f"content/{sg.EVENT}/{message}" in lines, (message, lines)
    assert any(
        line.startswith("content/other-2027/event.yaml:") and "YAML syntax" in line
        for line in lines
    )
    assert lines[-1] == "Error: 5 mistake(s) in " + str(content) + "/"


def test_check_content_ok(monkeypatch, sg):
    monkeypatch.setenv("AFA_CONTENT_DIR", str(sg.SAMPLE.parent))
    result = CliRunner().invoke(cli, ["check-content"])
    assert result.exit_code == 0
    assert result.output == "content OK: 1 events, 21 presentations\n"


def test_build_command_prints_progress_and_summary(make_settings, monkeypatch, tmp_path):
    monkeypatch.setenv("AFA_ARCHIVE_PATH", str(tmp_path / "none.db"))
    monkeypatch.setenv("AFA_CONTENT_DIR", str(make_settings().content_dir))
    result = CliRunner().invoke(cli, ["build", "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "presentation.html: 21 page(s), 21 rendered" in result.output
    assert (
        "built 109 pages, 8 static and 0 search files: 117 written, 0 unchanged "
        "(0 not re-rendered), 0 removed; 0 posts" in result.output
    )


def test_content_errors_stop_the_build_with_a_clean_message(tmp_path, monkeypatch):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "event.yaml").write_text("name: [\n")
    monkeypatch.setenv("AFA_CONTENT_DIR", str(tmp_path))
    monkeypatch.setenv("AFA_ARCHIVE_PATH", str(tmp_path / "none.db"))
    result = CliRunner().invoke(cli, ["build", "--output", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "bad/event.yaml:" in result.output and "YAML syntax" in result.output
    assert not (tmp_path / "out").exists()


MODERATION = """\
approve_first: maybe
rules:
  - keyword: free crypto
    why: spam
  - pattern: "(unclosed"
  - keyword: x
    action: delete
colour: red
"""


def test_check_content_validates_each_events_moderation_file(tmp_path, monkeypatch, sg):
    content = tmp_path / "content"
    shutil.copytree(sg.SAMPLE.parent, content)
    path = content / sg.EVENT / "moderation.yaml"
    path.write_text(MODERATION)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AFA_CONTENT_DIR", str(content))
    result = CliRunner().invoke(cli, ["check-content"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    where = f"content/{sg.EVENT}/moderation.yaml"
    found = {int(line.split(":")[1]) for line in lines if line.startswith(where + ":")}
    assert found == {1, 5, 7, 8}, lines  # approve_first, the pattern, the action, the key
    assert any("not a regular expression" in line for line in lines), lines
    assert any("unknown key 'colour'" in line for line in lines), lines
    assert lines[-1] == "Error: 4 mistake(s) in " + str(content) + "/"
    path.write_text("rules:\n  - keyword: free crypto\n    why: spam\n")
    result = CliRunner().invoke(cli, ["check-content"])
    assert result.exit_code == 0, result.output
    assert result.output == "content OK: 1 events, 21 presentations\n"
