"""The dashboard's one secret: sign-in, signed session cookies, CSRF tokens, a slow-down.

The secret (AFA_ADMIN_SECRET) is only ever compared with hmac.compare_digest and used to derive
the key that signs session cookies, so changing it signs every organizer out. A session cookie is
`expires.csrf.signed_in.who.mac`; the CSRF token inside it must come back with every POST (double
submit, checked in constant time), and signing out revokes the session (`Revoked`). Repeated
failed sign-ins are slowed down per client address.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.paths import private_dir

MIN_SECRET_LENGTH = 16
ANONYMOUS_SECONDS = 3600  # a sign-in form's session, before anyone has signed in
MAX_TRACKED_ADDRESSES = 10_000


def secret_problem(secret: str | None) -> str | None:
    """Why the dashboard must not start with this secret, or None."""
    if not secret:
        return (
            "AFA_ADMIN_SECRET is not set: the dashboard will not start without a secret. "
            "Set it in the environment, e.g. AFA_ADMIN_SECRET=$(python -c "
            '"import secrets; print(secrets.token_urlsafe(24))")'
        )
    if len(secret) < MIN_SECRET_LENGTH:
        return f"AFA_ADMIN_SECRET is too short: use at least {MIN_SECRET_LENGTH} characters"
    return None


def secret_matches(secret: str, offered: str) -> bool:
    """Constant time, and the digests are of equal length, so not even the length leaks."""
    digest = hashlib.sha256
    return hmac.compare_digest(digest(secret.encode()).digest(), digest(offered.encode()).digest())


@dataclass(frozen=True)
class Session:
    expires: int
    csrf: str
    signed_in: bool
    who: str = ""  # the name an organizer gave at sign-in, for the audit log

    def csrf_matches(self, offered: str | None) -> bool:
        return bool(offered) and hmac.compare_digest(self.csrf.encode(), str(offered).encode())


class Sessions:
    """Signs and reads session cookies with a key derived from the secret."""

    def __init__(
        self, secret: str, hours: float, clock: Callable[[], float] = time.time,
        revoked: Path | None = None,
    ) -> None:  # fmt: skip
        self.key = hmac.new(secret.encode(), b"afa-admin-session/1", hashlib.sha256).digest()
        self.seconds = int(hours * 3600)
        self.clock = clock
        self.revoked = Revoked(revoked, clock)

    def revoke(self, session: Session) -> None:
        """Sign a session out for good: its cookie, wherever a copy is, is refused from now on."""
        self.revoked.add(session.csrf, session.expires)

    def new(self, signed_in: bool, who: str = "") -> Session:
        seconds = self.seconds if signed_in else ANONYMOUS_SECONDS
        return Session(int(self.clock()) + seconds, secrets.token_urlsafe(24), signed_in, who)

    def dump(self, session: Session) -> str:
        who = base64.urlsafe_b64encode(session.who.encode()).decode().rstrip("=")
        body = f"{session.expires}.{session.csrf}.{int(session.signed_in)}.{who}"
        return f"{body}.{self._mac(body)}"

    def load(self, cookie: str | None) -> Session | None:
        if not cookie or cookie.count(".") != 4:
            return None
        body, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        expires, csrf, signed_in, who = body.split(".")
        if not expires.isdigit() or int(expires) < self.clock():
            return None
        if csrf in self.revoked:
            return None
        name = base64.urlsafe_b64decode(who + "=" * (-len(who) % 4)).decode("utf-8", "replace")
        return Session(int(expires), csrf, signed_in == "1", name)

    def sign(self, text: str) -> str:
        """A short message (a flash) that only this dashboard could have written."""
        body = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
        return f"{body}.{self._mac('flash:' + body)}"

    def unsign(self, value: str | None) -> str | None:
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac.encode(), self._mac("flash:" + body).encode()):
            return None
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8", "replace")

    def _mac(self, body: str) -> str:
        return hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()


class Revoked:
    """Signed-out sessions, by a hash of their CSRF token (a session's unique part), each kept
    until the session would have expired anyway. Saved to `path` (mode 0600) when given, so a
    restart of the dashboard does not bring a signed-out session back."""

    def __init__(self, path: Path | None, clock: Callable[[], float]) -> None:
        self.path, self.clock = path, clock
        self.until: dict[str, int] = {}
        if path is not None and path.exists():
            with contextlib.suppress(OSError, ValueError, AttributeError):
                self.until = {str(k): int(v) for k, v in json.loads(path.read_text()).items()}

    def add(self, token: str, expires: int) -> None:
        now = self.clock()
        self.until = {k: v for k, v in self.until.items() if v >= now}
        self.until[_digest(token)] = expires
        if self.path is not None:
            private_dir(self.path.parent)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(self.until, out)
            os.replace(tmp, self.path)

    def __contains__(self, token: str) -> bool:
        return _digest(token) in self.until


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SignInLimit:
    """Failed sign-ins slow an address down; they never lock it out, since everyone behind one
    venue NAT shares it (a lockout would let anyone there lock the organizers out).

    Below `limit` failures an attempt is checked at once; from then on each attempt waits
    1 s, 2 s, 4 s … (at most `max_delay`) before its check, whatever secret it carries. A success
    clears the count; so do `forget` seconds without a failure. Concurrent attempts wait side by
    side rather than in a queue, so a flood delays the right secret by `max_delay` at most."""

    def __init__(
        self, limit: int, max_delay: float, forget: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.limit, self.max_delay, self.forget, self.clock = limit, max_delay, forget, clock
        self.failures: dict[str, tuple[int, float]] = {}  # address -> (count, last failure)

    def delay(self, address: str) -> float:
        """Seconds an attempt from `address` waits before the secret is checked."""
        count = self._count(address)
        if count < self.limit:
            return 0.0
        return min(2.0 ** min(count - self.limit, 32), self.max_delay)

    def failed(self, address: str) -> None:
        if address not in self.failures and len(self.failures) >= MAX_TRACKED_ADDRESSES:
            self._forget_some()
        self.failures[address] = (self._count(address) + 1, self.clock())

    def succeeded(self, address: str) -> None:
        self.failures.pop(address, None)

    def _count(self, address: str) -> int:
        count, last = self.failures.get(address, (0, 0.0))
        if count and self.clock() - last > self.forget:
            del self.failures[address]
            return 0
        return count

    def _forget_some(self) -> None:
        """Drop the oldest half, so the table stays bounded."""
        oldest = sorted(self.failures, key=lambda a: self.failures[a][1])
        for address in oldest[: len(oldest) // 2 + 1]:
            del self.failures[address]
