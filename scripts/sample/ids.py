"""Deterministic identifiers and timestamps, all drawn from one random.Random."""

from __future__ import annotations

import random
from datetime import UTC, datetime

B32_SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"
B32 = "abcdefghijklmnopqrstuvwxyz234567"
BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def iso_ms(moment: datetime) -> str:
    """2026-10-24T09:12:03.456Z: the shape Mastodon and the recording use."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def epoch_us(moment: datetime) -> int:
    return int(round(moment.timestamp() * 1_000_000))


def hexstr(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def tid(moment: datetime, clock_id: int) -> str:
    """An atproto TID: 53 bits of microseconds and 10 bits of clock id, base32-sortable."""
    value = (epoch_us(moment) << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(B32_SORTABLE[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def cid(rng: random.Random, prefix: str = "bafyrei") -> str:
    return prefix + "".join(rng.choice(B32) for _ in range(52))


def did_plc(rng: random.Random) -> str:
    return "did:plc:" + "".join(rng.choice(B32) for _ in range(24))


def blurhash(rng: random.Random) -> str:
    return "U" + "".join(rng.choice(BASE83) for _ in range(35))


class Snowflakes:
    """Mastodon ids for one instance: (unix ms << 16) | 16 random-ish bits, never reused."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[int] = set()

    def at(self, moment: datetime) -> str:
        base = epoch_ms(moment) << 16
        while True:
            value = base | self.rng.getrandbits(16)
            if value not in self.used:
                self.used.add(value)
                return str(value)
