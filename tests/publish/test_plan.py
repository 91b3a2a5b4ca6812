"""The publish plan on its own: what goes up, what waits for what, what is deleted."""

from __future__ import annotations

from sitegen.publish.headers import cache_control, compressible, content_type
from sitegen.publish.plan import links_of, make_plan, post_order

PAGES = {
    "index.html": b'<a href="ev/">ev</a><a href="https://elsewhere.example/">x</a>',
    "ev/index.html": b'<a href="talks/new/">new</a><a href="../">home</a>'
    b'<link href="../static/style.css?v=1"><a href="mailto:a@b.example">m</a>',
    "ev/talks/new/index.html": b'<a href="../old/">prev</a><a href="/ev/talks/new2">next</a>'
    b'<a href="../../../../etc/">up</a>',
    "ev/talks/new2/index.html": b'<a href="../new/">prev</a>',
    "ev/talks/old/index.html": b'<a href="../new/#p1">next</a>',
}


def test_links_are_the_site_files_a_page_points_to():
    within = set(PAGES) | {"static/style.css"}
    assert links_of("ev/index.html", PAGES.__getitem__, within) == {
        "ev/talks/new/index.html", "index.html", "static/style.css"}  # fmt: skip
    # relative, from the root, a folder without its slash; nothing above the root
    assert links_of("ev/talks/new/index.html", PAGES.__getitem__, within) == {
        "ev/talks/old/index.html", "ev/talks/new2/index.html"}  # fmt: skip


def test_post_order_puts_each_key_after_its_targets_and_cuts_cycles():
    edges = {"a": ["b", "c"], "b": ["c"], "c": ["b"], "d": []}
    order, kept = post_order(["a", "b", "c", "d"], edges)
    assert sorted(order) == ["a", "b", "c", "d"]
    position = {key: i for i, key in enumerate(order)}
    for key, targets in kept.items():
        for target in targets:
            assert position[target] < position[key]
    assert ("b" in kept.get("c", [])) != ("c" in kept.get("b", []))  # one edge of the cycle


def test_a_plan_waits_only_for_files_the_target_does_not_hold():
    files = {key: f"sha-{key}" for key in PAGES} | {
        "static/style.css": "sha-css-2",
        "ev/pagefind/pagefind-entry.json": "sha-entry",
        "ev/pagefind/fragment/en_1a2b3c4d.pf_fragment": "sha-frag",
    }
    held = {"index.html": "sha-index.html", "ev/index.html": "old", "static/style.css": "old",
            "ev/talks/old/index.html": "old", "ev/pagefind/pagefind-entry.json": "old",
            "ev/pagefind/fragment/en_0000000.pf_fragment": "gone", "gone.html": None}  # fmt: skip
    plan = make_plan(files, held, lambda key: PAGES[key])
    assert "index.html" not in plan.uploads  # held with the same sha
    assert set(plan.deletes) == {"gone.html", "ev/pagefind/fragment/en_0000000.pf_fragment"}
    assert plan.new == {"ev/talks/new/index.html", "ev/talks/new2/index.html",
                        "ev/pagefind/fragment/en_1a2b3c4d.pf_fragment"}  # fmt: skip
    position = {key: i for i, key in enumerate(plan.uploads)}
    assert plan.waits["ev/index.html"] == ["ev/talks/new/index.html"]  # not the changed css
    assert position["ev/talks/new/index.html"] < position["ev/index.html"]
    assert position["ev/talks/new/index.html"] < position["ev/talks/old/index.html"]
    assert plan.waits["ev/pagefind/pagefind-entry.json"] == [
        "ev/pagefind/fragment/en_1a2b3c4d.pf_fragment"]  # fmt: skip


def test_types_and_cache_policies():
    assert content_type("a/index.html") == "text/html; charset=utf-8"
    assert content_type("a/feed.atom") == "application/atom+xml; charset=utf-8"
    assert content_type("a/posts.jsonl.gz") == "application/gzip"
    assert content_type("a/pagefind/wasm.en.pagefind") == "application/octet-stream"
    assert cache_control("a/pagefind/index/en_9f8e7d6.pf_index").endswith("immutable")
    assert cache_control("a/pagefind/pagefind.en_26d87b72ef.pf_meta").endswith("immutable")
    assert "immutable" not in cache_control("a/pagefind/wasm.en.pagefind")
    assert "immutable" not in cache_control("static/style.css")
    assert cache_control("a/index.html").startswith("public, max-age=60,")
    assert compressible("a/index.html") and not compressible("a/posts.jsonl.gz")
