"""The dashboard's gate without a server: session cookies, CSRF tokens, the sign-in slow-down."""

from __future__ import annotations

from admin.app import duration, spark
from admin.auth import Sessions, SignInLimit, secret_matches, secret_problem

SECRET = "a long enough organizer secret"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_session_survives_a_round_trip_and_nothing_else_does():
    clock = Clock()
    sessions = Sessions(SECRET, hours=1, clock=clock)
    session = sessions.new(signed_in=True, who="Robin Ó.")
    cookie = sessions.dump(session)
    assert sessions.load(cookie) == session
    assert SECRET not in cookie
    expires, csrf, signed_in, who, mac = cookie.split(".")
    other = "1" if mac[-1] == "0" else "0"
    assert sessions.load(".".join([expires, csrf, signed_in, who, mac[:-1] + other])) is None
    anonymous = sessions.dump(sessions.new(signed_in=False))
    assert sessions.load(anonymous.replace(".0.", ".1.", 1)) is None  # signed in without the key
    assert sessions.load(".".join([str(int(expires) + 9), csrf, signed_in, who, mac])) is None
    assert Sessions("another secret, also long", 1, clock).load(cookie) is None
    for junk in (None, "", "a.b.c", "1.2.3.4.5.6", cookie + "."):
        assert sessions.load(junk) is None
    clock.now += 3601
    assert sessions.load(cookie) is None


def test_an_anonymous_session_is_not_signed_in_and_csrf_is_compared_exactly():
    sessions = Sessions(SECRET, hours=12, clock=Clock())
    session = sessions.load(sessions.dump(sessions.new(signed_in=False)))
    assert session is not None and not session.signed_in
    assert session.csrf_matches(session.csrf)
    assert not session.csrf_matches(None) and not session.csrf_matches("")
    assert not session.csrf_matches(session.csrf + "x")
    assert sessions.new(False).csrf != sessions.new(False).csrf


def test_a_revoked_session_stays_revoked_after_a_restart(tmp_path):
    clock = Clock()
    path = tmp_path / "run" / "signed-out.json"
    sessions = Sessions(SECRET, hours=1, clock=clock, revoked=path)
    kept, gone = sessions.new(signed_in=True), sessions.new(signed_in=True)
    sessions.revoke(gone)
    assert sessions.load(sessions.dump(gone)) is None
    assert sessions.load(sessions.dump(kept)) == kept
    assert oct(path.stat().st_mode & 0o777) == "0o600" and gone.csrf not in path.read_text()
    restarted = Sessions(SECRET, hours=1, clock=clock, revoked=path)
    assert restarted.load(sessions.dump(gone)) is None
    assert restarted.load(sessions.dump(kept)) == kept
    clock.now += 3601  # both expired: the next revocation drops the old entry
    restarted.revoke(restarted.new(signed_in=True))
    assert len(restarted.revoked.until) == 1


def test_flash_messages_are_signed():
    sessions = Sessions(SECRET, hours=1)
    signed = sessions.sign("hide https://x/1: 1 retract")
    assert sessions.unsign(signed) == "hide https://x/1: 1 retract"
    body, mac = signed.split(".")
    assert sessions.unsign(body + "." + mac[::-1]) is None and sessions.unsign("x") is None


def test_the_secret_must_be_set_and_long_and_is_compared_whole():
    assert "not set" in secret_problem(None) and "not set" in secret_problem("")
    assert secret_problem("x" * 15) == "AFA_ADMIN_SECRET is too short: use at least 16 characters"
    assert secret_problem(SECRET) is None
    assert secret_matches(SECRET, SECRET)
    assert not secret_matches(SECRET, SECRET[:-1]) and not secret_matches(SECRET, "")


def test_failed_sign_ins_slow_one_address_down_and_are_forgotten():
    clock = Clock()
    limit = SignInLimit(3, max_delay=5, forget=60, clock=clock)
    delays = []
    for _ in range(7):
        limit.failed("10.0.0.1")
        delays.append(limit.delay("10.0.0.1"))
    assert delays == [0, 0, 1, 2, 4, 5, 5]  # doubling from the limit on, up to max_delay
    assert limit.delay("10.0.0.2") == 0
    clock.now += 60
    assert limit.delay("10.0.0.1") == 5
    clock.now += 1  # a minute and a second without a failure
    assert limit.delay("10.0.0.1") == 0
    limit.failed("10.0.0.1")  # a fresh count
    assert limit.delay("10.0.0.1") == 0


def test_a_success_clears_the_count():
    limit = SignInLimit(2, max_delay=30, forget=60, clock=Clock())
    limit.failed("a")
    limit.failed("a")
    assert limit.delay("a") == 1
    limit.succeeded("a")
    limit.failed("a")
    assert limit.delay("a") == 0


def test_the_table_of_addresses_stays_bounded(monkeypatch):
    monkeypatch.setattr("admin.auth.MAX_TRACKED_ADDRESSES", 10)
    clock = Clock()
    limit = SignInLimit(1, max_delay=30, forget=600, clock=clock)
    for k in range(25):
        clock.now += 1
        limit.failed(f"10.0.0.{k}")
    assert len(limit.failures) <= 10
    assert limit.delay("10.0.0.24") == 1  # the newest are kept


def test_dashboard_formatting():
    assert [duration(v) for v in (None, 5, 125, 7300)] == ["-", "5 s", "2 min", "2 h 01 min"]
    assert spark([0, 0]) == "▁▁" and spark([0, 1, 2]) == "▁▅█"
