"""HMAC-SHA256 under one key, many times: the datagrams' and reports' MAC.

``hmac.digest(key, data, "sha256")`` sets the key up and looks the hash up
in OpenSSL's provider tables on every call.  A daemon checks one MAC per
datagram and seals one per report, woken once per command among a hundred
others on two cores, when none of that is in the CPU's caches: measured so
(with the caches flushed between calls), a one-shot MAC of a 400-byte datagram took
72 µs and a copy of a keyed context 34 µs.  So the key is set up once and
each MAC starts from a copy of it -- the same HMAC, from the same library.
The keyed context is OpenSSL's own HMAC object, the one ``hmac.new`` wraps:
its copy, update and digest are C calls, where the ``hmac.HMAC`` wrapper
adds three Python calls to each MAC (nine per command on a node).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

try:  # what hmac.new itself uses when Python is built with OpenSSL
    from _hashlib import hmac_new as _openssl_hmac
except ImportError:  # pragma: no cover - a Python without OpenSSL's hashlib
    _openssl_hmac = None

LENGTH = 32


def _keyed_context(key: bytes) -> Any:
    """An HMAC-SHA256 context under ``key`` with copy, update and digest."""
    if _openssl_hmac is not None:
        return _openssl_hmac(key, digestmod="sha256")
    return hmac.new(key, digestmod=hashlib.sha256)


class KeyedMac:
    """HMAC-SHA256 under ``key``: :meth:`digest` and :meth:`matches`."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        self._keyed = _keyed_context(key)

    def digest(self, data: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(data)
        return mac.digest()

    def matches(self, data: bytes, mac: bytes) -> bool:
        """Whether ``mac`` is the MAC of ``data`` (compared in constant time)."""
        return hmac.compare_digest(self.digest(data), mac)
