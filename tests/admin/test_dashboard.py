"""The dashboard over real HTTP (`python -m admin serve` in a subprocess, a real archive and
Redis): it will not start without a secret; every organizer endpoint refuses without a session,
every POST without the CSRF token; repeated failed sign-ins are slowed down, never refused;
X-Forwarded-For counts only from a configured proxy; moderation from the dashboard reaches the
archive, the audit log and the live tail."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import pytest
import redis as redis_lib

from admin.app import COOKIE, ROUTES
from core.archive import open_archive
from core.rebuild import rebuild_request
from core.redisd import EmbeddedRedis, free_port, wait_for_port
from core.tail import decode_entry, stream_key
from tests.collector.conftest import build_recording

from .conftest import EVENT, ROOT, SECRET, csrf_of, dashboard_env, sign_in

MAX_DELAY = 0.5
LIMIT = 3


@dataclass
class Dashboard:
    port: int
    env: dict[str, str]
    process: subprocess.Popen
    redis: redis_lib.Redis
    recording: object

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=15, **kwargs)

    def output(self) -> str:
        self.process.terminate()
        return self.process.communicate(timeout=15)[0]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """An archive filled by a real replay, a real Redis, and the dashboard serving them."""
    tmp = tmp_path_factory.mktemp("dashboard")
    redis_server = EmbeddedRedis(tmp / "redis", persist=False).start()
    rec = build_recording(tmp / "recording.jsonl", size=30)
    rec.write()
    port = free_port()
    env = dashboard_env(tmp, REDIS_URL=redis_server.url, AFA_ADMIN_PORT=str(port),
                        AFA_ADMIN_SIGNIN_LIMIT=str(LIMIT),
                        AFA_ADMIN_SIGNIN_MAX_DELAY=str(MAX_DELAY))  # fmt: skip
    replay = [sys.executable, "-m", "collector", "replay", EVENT, str(rec.path), "--speed", "0"]
    subprocess.run(replay, env=env, cwd=ROOT, check=True, capture_output=True, timeout=120)
    process = subprocess.Popen([sys.executable, "-m", "admin", "serve"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    client = redis_lib.Redis.from_url(redis_server.url, decode_responses=True)
    found = Dashboard(port, env, process, client, rec)
    try:
        wait_for_port(port, timeout=90)
        yield found
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(15)
        client.close()
        redis_server.stop()


def test_it_refuses_to_start_without_a_secret(tmp_path):
    env = dashboard_env(tmp_path, AFA_ADMIN_PORT=str(free_port()))
    del env["AFA_ADMIN_SECRET"]
    result = subprocess.run([sys.executable, "-m", "admin", "serve"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert "Error: AFA_ADMIN_SECRET is not set: the dashboard will not start" in result.stderr
    env["AFA_ADMIN_SECRET"] = "short"
    result = subprocess.run([sys.executable, "-m", "admin", "serve"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert "AFA_ADMIN_SECRET is too short: use at least 16 characters" in result.stderr
    assert "short" not in result.stderr.replace("too short", "")


def concrete(path: str) -> str:
    return path.replace("{name}", "live").replace("{action}", "restart").replace("{event}", EVENT)


ORGANIZER = [
    (method, concrete(route.path))
    for route in ROUTES
    for method in sorted(route.methods - {"HEAD"})
    if route.path != "/signin"
] + [("POST", f"/moderate/{EVENT}/hide"), ("POST", f"/moderate/{EVENT}/approve-first")]


@pytest.mark.parametrize("method,path", ORGANIZER)
def test_every_organizer_endpoint_refuses_without_the_secret(dashboard, method, path):
    with dashboard.client() as client:
        anonymous = client.request(method, path, data={"uri": "x", "csrf": "x"})
        client.get("/signin")  # a sign-in form's session: still not signed in
        started = client.request(method, path, data={"uri": "x", "csrf": "x"})
        signed_in = client.cookies[COOKIE].replace(".0.", ".1.", 1)  # without the key
        assert signed_in != client.cookies[COOKIE]
    with dashboard.client(cookies={COOKIE: signed_in}) as client:
        forged = client.request(method, path, data={"csrf": "x"})
    for response in (anonymous, started, forged):
        if method == "POST":
            assert response.status_code == 403, (path, response.text)
        elif path.startswith("/api/"):
            assert response.status_code == 401
        else:
            assert response.status_code == 303 and response.headers["location"] == "/signin"
        assert SECRET not in response.text


@pytest.mark.parametrize("path", [concrete(r.path) for r in ROUTES if r.methods == {"POST"}]
                         + [f"/moderate/{EVENT}/hide"])  # fmt: skip
def test_every_post_refuses_without_the_csrf_token(dashboard, path):
    with dashboard.client() as client:
        assert sign_in(client).status_code == 303
        token = csrf_of(client.get("/").text)
        missing = client.post(path, data={"uri": "x"})
        other = "A" if token[-1] != "A" else "B"  # a token ending in "A" would be the right one
        wrong = client.post(path, data={"uri": "x", "csrf": token[:-1] + other})
        assert client.get("/api/status").status_code == 200  # still signed in
    assert missing.status_code == wrong.status_code == 403
    assert "CSRF" in missing.text


def test_sign_in_needs_its_csrf_token_and_sets_a_strict_cookie(dashboard):
    with dashboard.client() as client:
        client.get("/signin")
        refused = client.post("/signin", data={"secret": SECRET})
        assert refused.status_code == 403 and COOKIE in client.cookies
        response = sign_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and SECRET not in cookie
    assert response.headers["x-frame-options"] == "DENY"


def failing(client: httpx.Client, times: int) -> None:
    for _ in range(times):
        assert sign_in(client, "not the secret at all").status_code == 401


def timed_sign_in(client: httpx.Client, secret: str = SECRET) -> tuple[int, float]:
    page = client.get("/signin")
    started = time.monotonic()
    response = client.post("/signin", data={"secret": secret, "csrf": csrf_of(page.text)})
    return response.status_code, time.monotonic() - started


def test_repeated_failures_are_slowed_down_but_the_right_secret_still_gets_in(dashboard):
    """Anyone behind the organizers' venue NAT can fail on purpose: that must not lock the
    organizers out. Past the limit, each attempt waits before its check (a lower bound only:
    a loaded machine can make it slower, never faster)."""
    with dashboard.client() as client:
        failing(client, LIMIT)
        status, slowed = timed_sign_in(client, "still not the secret")
        assert status == 401 and slowed >= MAX_DELAY
        status, slowed = timed_sign_in(client)
        assert status == 303 and slowed >= MAX_DELAY
        assert client.get("/api/status").status_code == 200


def test_x_forwarded_for_is_a_clients_word_without_a_configured_proxy(dashboard):
    """Without AFA_ADMIN_TRUSTED_PROXIES the header names no one: failures sent with made-up
    addresses count against the address they came from."""
    for k in range(LIMIT):
        with dashboard.client(headers={"X-Forwarded-For": f"203.0.113.{k}"}) as liar:
            failing(liar, 1)
    with dashboard.client() as client:
        status, slowed = timed_sign_in(client)
    assert status == 303 and slowed >= MAX_DELAY


def test_x_forwarded_for_is_believed_from_the_configured_proxy(tmp_path):
    port = free_port()
    env = dashboard_env(tmp_path, AFA_ADMIN_PORT=str(port),
                        AFA_ADMIN_TRUSTED_PROXIES="127.0.0.1")  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "admin", "serve"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_for_port(port, timeout=90)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15,
                          headers={"X-Forwarded-For": "203.0.113.9"}) as client:  # fmt: skip
            assert sign_in(client, "not the secret at all").status_code == 401
    finally:
        process.terminate()
        output = process.communicate(timeout=15)[0]
    assert "failed sign-in from 203.0.113.9" in output


def test_signing_out_revokes_the_session(dashboard):
    """A copy of the cookie (another tab, a stolen one) is worth nothing after sign-out."""
    with dashboard.client() as client:
        assert sign_in(client).status_code == 303
        cookie = client.cookies[COOKIE]
        token = csrf_of(client.get("/").text)
        assert client.post("/signout", data={"csrf": token}).status_code == 303
    with dashboard.client(cookies={COOKIE: cookie}) as copy:
        assert copy.get("/api/status").status_code == 401
        assert copy.post("/signout", data={"csrf": token}).status_code == 403


def test_the_secret_is_in_no_url_and_no_log_line(dashboard):
    with dashboard.client() as client:
        sign_in(client, SECRET + "x")
        sign_in(client)
        page = client.get("/")
    assert page.status_code == 200 and SECRET not in page.text and SECRET not in str(page.url)


def held_or_visible(dashboard: Dashboard, uri: str) -> str:
    db = open_archive(dashboard.env["AFA_ARCHIVE_PATH"])
    try:
        return db.execute("SELECT status FROM items WHERE event = ? AND uri = ?",
                          [EVENT, uri]).fetchone()[0]  # fmt: skip
    finally:
        db.close()


def test_hide_and_unhide_from_the_dashboard(dashboard):
    uri = sorted(dashboard.recording.visible)[0]
    with dashboard.client() as client:
        sign_in(client)
        page = client.get(f"/moderate/{EVENT}")
        assert page.status_code == 200 and "Latest posts" in page.text
        token = csrf_of(page.text)
        last = dashboard.redis.xrevrange(stream_key(EVENT), count=1)[0][0]
        response = client.post(f"/moderate/{EVENT}/hide",
                               data={"csrf": token, "uri": uri, "why": "spam"})  # fmt: skip
        assert response.status_code == 303
        assert held_or_visible(dashboard, uri) == "moderated"
        entry = dashboard.redis.xrange(stream_key(EVENT), min=f"({last}")[0]
        kind, data = decode_entry(entry[1])
        assert kind == "retract" and json.loads(data)["uri"] == uri
        after = client.get(f"/moderate/{EVENT}")
        assert "hide" in after.text and "spam" in after.text and "1 retract" in after.text
        assert client.post(f"/moderate/{EVENT}/unhide",
                           data={"csrf": token, "uri": uri}).status_code == 303  # fmt: skip
        assert held_or_visible(dashboard, uri) == "visible"
        nothing = client.post(f"/moderate/{EVENT}/unhide", data={"csrf": token, "uri": uri})
        assert "Not done:" in client.get(nothing.headers["location"]).text
    db = open_archive(dashboard.env["AFA_ARCHIVE_PATH"])
    request = rebuild_request(db, EVENT)
    db.close()
    assert request.reason == f"unhide {uri}"


@pytest.mark.parametrize("number", ["²", "٣", "9" * 5000, "9" * 20, "-1", "0x1"])
def test_a_bad_number_in_a_form_is_a_clear_400(dashboard, number):
    with dashboard.client() as client:
        sign_in(client)
        token = csrf_of(client.get(f"/moderate/{EVENT}").text)
        response = client.post(f"/moderate/{EVENT}/rule-remove",
                               data={"csrf": token, "rule": number, "why": "x"})  # fmt: skip
    assert response.status_code == 400
    assert response.text.startswith("rule must be a rule's number (digits 0-9), not ")
    assert len(response.text) < 200


def test_the_original_link_is_http_only(dashboard):
    """A post's URL goes through the same http(s) filter as on the site: a `javascript:` URL a
    source slipped past would otherwise run in the organizer's signed-in page."""
    from datetime import UTC, datetime

    from collector.store import save_batch
    from core.items import Author, Item

    bad = Item(uri="https://evil.example/1", source="mastodon", origin="evil.example",
               local_id="1", url="javascript:alert(document.cookie)", text="click original",
               created_at=datetime.now(UTC), author=Author(id="https://evil.example/u"))  # fmt: skip
    good = Item(uri="https://ok.example/2", source="mastodon", origin="ok.example",
                local_id="2", url="https://ok.example/@u/2", text="fine post",
                created_at=datetime.now(UTC), author=Author(id="https://ok.example/u"))  # fmt: skip
    db = open_archive(dashboard.env["AFA_ARCHIVE_PATH"])
    save_batch(db, EVENT, [bad, good], "test", None)
    db.close()
    with dashboard.client() as client:
        sign_in(client)
        page = client.get(f"/moderate/{EVENT}").text
    assert "click original" in page and "javascript:" not in page
    assert 'href="https://ok.example/@u/2"' in page


def test_approve_first_holds_posts_in_the_dashboard_queue(dashboard):
    with dashboard.client() as client:
        sign_in(client, SECRET)
        token = csrf_of(client.get(f"/moderate/{EVENT}").text)
        on = client.post(f"/moderate/{EVENT}/approve-first", data={"csrf": token, "on": "1"})
        assert on.status_code == 303
        assert "Approve first: on" in client.get(f"/moderate/{EVENT}").text
        off = client.post(f"/moderate/{EVENT}/approve-first", data={"csrf": token, "on": "0"})
        assert off.status_code == 303
        assert "Approve first: off" in client.get(f"/moderate/{EVENT}").text
        home = client.get("/")
    assert f"{EVENT}: 0 waiting for approval" in home.text


def test_no_log_line_holds_the_secret(dashboard):
    with dashboard.client() as client:
        sign_in(client, SECRET[::-1])
        sign_in(client)
    output = dashboard.output()
    assert "failed sign-in from 127.0.0.1" in output
    assert "POST /signin" in output
    assert SECRET not in output and SECRET[::-1] not in output
