"""Golden output: build tests/sitegen/sites/basic and compare with tests/sitegen/expected/basic.

After a deliberate change to the pages, regenerate the expected output and review the diff:

    .venv/bin/python tests/sitegen/update_expected.py && git diff tests/sitegen/expected
"""

import difflib
import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("update_expected", HERE / "update_expected.py")
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_basic_site_matches_expected_output(tmp_path):
    got = files(golden.build_golden(tmp_path))
    want = files(golden.EXPECTED)
    assert sorted(got) == sorted(want)
    for name in want:
        if got[name] != want[name]:
            diff = difflib.unified_diff(
                want[name].decode().splitlines(),
                got[name].decode().splitlines(),
                f"expected/{name}",
                f"built/{name}",
                lineterm="",
                n=2,
            )
            raise AssertionError("\n".join(list(diff)[:60]))


def test_golden_site_places_posts_as_the_rules_say(tmp_path):
    """The expected output is reviewed by eye; this pins the placements it should show."""
    out = golden.build_golden(tmp_path) / "tiny-2026"

    def uris(page):
        text = (out / page / "index.html").read_text()
        return [
            int(u.split("/")[-1]) for u in text.split('data-uri="')[1:] for u in [u.split('"')[0]]
        ]

    assert uris("talks/welcome") == [1, 2]
    assert uris("breaks/coffee") == [3]
    assert uris("talks/deep-dive") == [4, 6, 8]
    assert uris("talks/side-track") == []
    assert uris("") == [5, 7]  # unplaced: parallel talks, no tag
