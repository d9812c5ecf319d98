"""seer.protocol.mac: the keyed MAC is HMAC-SHA256, call after call."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from seer.protocol.mac import LENGTH, KeyedMac


@given(st.binary(min_size=16, max_size=100), st.lists(st.binary(max_size=2000), max_size=5))
def test_each_digest_is_the_hmac_of_its_data_alone(key, items):
    mac = KeyedMac(key)
    for data in items:  # one after the other: no call leaks into the next
        expected = hmac.digest(key, data, hashlib.sha256)
        assert mac.digest(data) == expected and len(expected) == LENGTH
        assert mac.matches(data, expected)
        assert not mac.matches(data + b"x", expected)
        assert not KeyedMac(key + b"x").matches(data, expected)


def test_the_openssl_context_and_the_hmac_module_agree(monkeypatch):
    from seer.protocol import mac as module

    key, data = b"k" * 32, b"a datagram" * 40
    fast = KeyedMac(key).digest(data)
    monkeypatch.setattr(module, "_openssl_hmac", None)  # a Python without OpenSSL's hashlib
    assert KeyedMac(key).digest(data) == fast == hmac.digest(key, data, hashlib.sha256)
