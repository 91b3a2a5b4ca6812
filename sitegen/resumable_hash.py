"""SHA-256 whose state can be saved after each member of a download and taken up again later.

A download that grew by one member (a session's posts) is hashed from where its kept start
ended, instead of reading the whole file again: 82 MB at a million posts, read from disk when the
file is no longer in memory. hashlib has no way to save a state, so this uses OpenSSL's own
SHA256_CTX (a plain struct of 112 bytes, the same since OpenSSL 0.9.8) through ctypes, the
libcrypto Python's hashlib is built on. It checks itself against hashlib when first used;
where libcrypto is missing or answers wrongly, `available()` is False and callers hash the file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
from functools import cache

SIZE = 112  # sizeof(SHA256_CTX): h[8], Nl, Nh, data[16], num, md_len (unsigned ints)
_NUM = 104  # offset of `num`, the bytes waiting in `data` (always below 64)


@cache
def _lib() -> ctypes.CDLL | None:
    for name in ("libcrypto.so.3", ctypes.util.find_library("crypto")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final  # noqa: B018
        except (OSError, AttributeError):
            continue
        if _agrees(lib):
            return lib
    return None


def _agrees(lib: ctypes.CDLL) -> bool:
    """Hash a message across a saved and restored state, and compare with hashlib."""
    message = bytes(range(256)) * 3
    ctx = ctypes.create_string_buffer(SIZE)
    lib.SHA256_Init(ctx)
    lib.SHA256_Update(ctx, message[:100], ctypes.c_size_t(100))
    again = ctypes.create_string_buffer(ctx.raw, SIZE)
    lib.SHA256_Update(again, message[100:], ctypes.c_size_t(len(message) - 100))
    out = ctypes.create_string_buffer(32)
    lib.SHA256_Final(out, again)
    return out.raw == hashlib.sha256(message).digest()


def available() -> bool:
    return _lib() is not None


def valid(state: bytes | None) -> bool:
    """Whether `state` can be taken up (a damaged one would make OpenSSL write past its buffer)."""
    return (
        isinstance(state, bytes)
        and len(state) == SIZE
        and int.from_bytes(state[_NUM : _NUM + 4], "little") < 64
    )


class Sha256:
    """hashlib.sha256 with `state()` and a constructor that takes one up. Only when available()."""

    def __init__(self, state: bytes | None = None) -> None:
        self._lib = _lib()
        if self._lib is None:
            raise RuntimeError("no libcrypto with SHA256_Init: check available() first")
        if state is not None and not valid(state):
            raise ValueError("not a SHA-256 state")
        self._ctx = ctypes.create_string_buffer(SIZE)
        if state is None:
            self._lib.SHA256_Init(self._ctx)
        else:
            ctypes.memmove(self._ctx, state, SIZE)

    def update(self, data: bytes) -> None:
        self._lib.SHA256_Update(self._ctx, bytes(data), ctypes.c_size_t(len(data)))

    def state(self) -> bytes:
        return self._ctx.raw

    def hexdigest(self) -> str:
        copy = ctypes.create_string_buffer(self._ctx.raw, SIZE)
        out = ctypes.create_string_buffer(32)
        self._lib.SHA256_Final(out, copy)
        return out.raw.hex()
