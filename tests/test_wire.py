"""The wire codec: frames, datagrams, signatures, and garbage."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from seer.protocol import datagrams, wire
from seer.protocol.datagrams import (
    KIND_MESSAGES,
    KIND_PING,
    MAX_DATAGRAM,
    SigningKeys,
    VerifyingKeys,
    decode_datagram,
    encode_datagram,
)
from seer.protocol.wire import PROTOCOL_VERSION, FrameDecoder, WireError, encode_frame

KEYS = SigningKeys.generate()
VERIFY = KEYS.verifying()

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20) \
    | st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
headers = st.dictionaries(st.text(max_size=10), json_values, max_size=5).map(
    lambda d: dict(d, type="COMMAND")
)


def command(i: int = 0) -> dict:
    return {"type": "COMMAND", "agent": "NOOP", "group": "g", "command": "START",
            "args": {"i": i}, "target": "*"}


# -- frames ---------------------------------------------------------------------


def test_frame_round_trip_with_blob():
    data = encode_frame({"type": "REPAIR", "id": 3}, b"\x00\xffblob")
    (frame,) = FrameDecoder().feed(data)
    assert frame.type == "REPAIR"
    assert frame.get("id") == 3
    assert frame.blob == b"\x00\xffblob"


def test_frames_split_at_every_byte_boundary_reassemble():
    data = encode_frame({"type": "A"}) + encode_frame({"type": "B"}, b"xy")
    decoder = FrameDecoder()
    frames = []
    for i in range(len(data)):
        frames += decoder.feed(data[i : i + 1])
    assert [f.type for f in frames] == ["A", "B"]
    assert decoder.buffered == 0


def test_oversized_frame_is_refused_before_buffering_it():
    decoder = FrameDecoder(max_frame=1000)
    with pytest.raises(WireError) as e:
        decoder.feed(struct.pack(">I", 1001))
    assert e.value.reason == "oversized"


def test_wrong_frame_version_is_refused():
    data = bytearray(encode_frame({"type": "A"}))
    data[4] = 1  # a SEER of protocol version 1
    with pytest.raises(WireError) as e:
        FrameDecoder().feed(bytes(data))
    assert e.value.reason == "version"
    assert "run the same SEER release on the controller, the daemons and the clients" in \
        str(e.value)


def test_decoder_stays_failed_after_an_error():
    decoder = FrameDecoder()
    with pytest.raises(WireError):
        decoder.feed(struct.pack(">IBI", 10, 1, 50) + b"x" * 5)
    with pytest.raises(WireError):
        decoder.feed(encode_frame({"type": "A"}))


@pytest.mark.parametrize("payload", [b"[1,2]", b'{"no":"type"}', b"\xff\xfe", b"NaN", b'{"type":5}'])
def test_frame_header_must_be_an_object_with_a_type(payload):
    body = struct.pack(">BI", PROTOCOL_VERSION, len(payload)) + payload
    with pytest.raises(WireError) as e:
        FrameDecoder().feed(struct.pack(">I", len(body)) + body)
    assert e.value.reason == "body"


def test_encode_frame_needs_a_type():
    with pytest.raises(ValueError):
        encode_frame({"id": 1})


@given(headers, st.binary(max_size=100))
def test_frame_round_trip_property(header, blob):
    (frame,) = FrameDecoder().feed(encode_frame(header, blob))
    assert frame.header == header
    assert frame.blob == blob


@given(st.lists(st.binary(max_size=64), max_size=8))
@settings(max_examples=300)
def test_frame_decoder_raises_only_wire_error_on_arbitrary_bytes(chunks):
    decoder = FrameDecoder(max_frame=4096)
    try:
        for chunk in chunks:
            for frame in decoder.feed(chunk):
                assert isinstance(frame.header, dict) and isinstance(frame.type, str)
    except WireError:
        pass


# -- datagrams ----------------------------------------------------------------------


def test_datagram_round_trip_of_a_batch():
    messages = [command(i) for i in range(3)]
    datagram = encode_datagram(KEYS, KIND_MESSAGES, 7, 100, messages)
    decoded = decode_datagram(VERIFY, datagram)
    assert (decoded.kind, decoded.epoch, decoded.serial) == (KIND_MESSAGES, 7, 100)
    assert decoded.numbered() == [(100, messages[0]), (101, messages[1]), (102, messages[2])]
    assert decoded.last_serial == 102


def test_ping_round_trip():
    decoded = decode_datagram(VERIFY, encode_datagram(KEYS, KIND_PING, 7, 55, body={"t": 1.5}))
    assert (decoded.kind, decoded.serial, decoded.body) == (KIND_PING, 55, {"t": 1.5})
    assert decoded.messages == ()


def test_forged_datagram_with_another_key_is_refused_by_its_mac():
    forged = encode_datagram(SigningKeys.generate(), KIND_MESSAGES, 7, 1, [command()])
    with pytest.raises(WireError) as e:
        decode_datagram(VERIFY, forged)
    assert e.value.reason == "mac"


def test_compromised_node_knowing_the_hmac_key_still_cannot_sign():
    # A node holds the HMAC key but not the controller's signing key.
    attacker = SigningKeys(KEYS.hmac_key, SigningKeys.generate().private_key)
    forged = encode_datagram(attacker, KIND_MESSAGES, 7, 1, [command()])
    with pytest.raises(WireError) as e:
        decode_datagram(VERIFY, forged)
    assert e.value.reason == "signature"


def test_any_flipped_bit_is_detected():
    datagram = encode_datagram(KEYS, KIND_MESSAGES, 7, 1, [command()])
    for position in (0, 5, 10, 30, len(datagram) - 40, len(datagram) - 1):
        tampered = bytearray(datagram)
        tampered[position] ^= 0x01
        with pytest.raises(WireError):
            decode_datagram(VERIFY, bytes(tampered))


def test_truncated_and_oversized_datagrams_are_refused():
    datagram = encode_datagram(KEYS, KIND_MESSAGES, 7, 1, [command()])
    with pytest.raises(WireError) as e:
        decode_datagram(VERIFY, datagram[:20])
    assert e.value.reason == "truncated"
    with pytest.raises(WireError) as e:
        decode_datagram(VERIFY, b"SEER" + b"\x01" * (MAX_DATAGRAM + 10))
    assert e.value.reason == "oversized"


def test_wrong_version_datagram_is_refused():
    datagram = bytearray(encode_datagram(KEYS, KIND_MESSAGES, 7, 1, [command()]))
    datagram[4] = 1  # a SEER of protocol version 1
    with pytest.raises(WireError) as e:
        decode_datagram(VERIFY, bytes(datagram))
    assert e.value.reason == "version"
    assert "protocol version 1, but this SEER speaks version 2" in str(e.value)


def test_signed_but_malformed_body_is_refused():
    # Correctly signed, but a message of an unknown type.
    bad = datagrams._seal(KEYS, KIND_MESSAGES, 7, 1, 1, b'[{"type":"REBOOT"}]')
    with pytest.raises(WireError) as e:
        decode_datagram(VERIFY, bad)
    assert e.value.reason == "body"


def test_message_too_large_for_a_datagram_is_refused_at_encoding():
    with pytest.raises(ValueError, match="exceeds"):
        encode_datagram(KEYS, KIND_MESSAGES, 7, 1, [dict(command(), args={"x": "y" * 70000})])


def test_verifying_keys_travel_as_json():
    again = VerifyingKeys.from_json(VERIFY.to_json())
    datagram = encode_datagram(KEYS, KIND_PING, 1, 1)
    assert decode_datagram(again, datagram).serial == 1
    with pytest.raises(WireError):
        VerifyingKeys.from_json({"hmac_key": "zz", "sign_key": "00"})


@given(st.lists(st.fixed_dictionaries({"i": st.integers(0, 10**9), "s": st.text(max_size=30)}),
                min_size=1, max_size=20),
       st.integers(1, 2**63), st.integers(1, 2**60))
def test_datagram_round_trip_property(payloads, epoch, serial):
    messages = [dict(command(), args=p) for p in payloads]
    decoded = decode_datagram(VERIFY, encode_datagram(KEYS, KIND_MESSAGES, epoch, serial, messages))
    assert list(decoded.messages) == messages
    assert (decoded.epoch, decoded.serial) == (epoch, serial)


@given(st.binary(max_size=400))
@settings(max_examples=500)
def test_datagram_decoder_raises_only_wire_error_on_arbitrary_bytes(data):
    try:
        decode_datagram(VERIFY, data)
    except WireError:
        pass


@given(st.binary(min_size=0, max_size=200))
@settings(max_examples=300)
def test_datagram_with_valid_header_and_random_rest_raises_only_wire_error(rest):
    header = struct.pack(">4sBBQQH", b"SEER", PROTOCOL_VERSION, 1, 7, 1, 1)
    try:
        decode_datagram(VERIFY, header + rest)
    except WireError:
        pass


# -- the body under a valid seal ----------------------------------------------------
#
# Random bytes after the header fail the HMAC, so the fuzz tests above never
# reach the body parser.  These seal their bodies with the real keys: the HMAC
# and the signature hold, and only the body decides.

#: The reasons WireError promises (its docstring): words counters are keyed by.
STABLE_REASONS = {"truncated", "magic", "version", "kind", "oversized", "mac", "signature", "body"}

message_types = st.sampled_from(sorted(datagrams.EXPERIMENT_MESSAGE_TYPES)) | json_values
message_like = st.dictionaries(st.text(max_size=8), json_values, max_size=4) | st.fixed_dictionaries(
    {"type": message_types}, optional={"target": json_values, "args": json_values})
nasty_json = st.sampled_from([
    b"[" * 5000 + b"]" * 5000,                 # deeper than the parser's recursion
    b'[{"type":"SET","n":' + b"9" * 5000 + b"}]",  # more digits than int() takes
    b'[{"type":"SET","x":1e999}]', b"[NaN]", b'{"t":Infinity}', b"[-Infinity]",
    b'[{"type":"\\ud800"}]', b"\xef\xbb\xbf[]", b"[1,]", b"", b"null", b'"COMMAND"',
])
bodies = (
    st.binary(max_size=300)
    | json_values.map(datagrams.dumps)
    | st.lists(message_like, max_size=4).map(datagrams.dumps)
    | nasty_json
)


def sealed(kind: int, epoch: int, serial: int, count: int, payload: bytes) -> bytes:
    return datagrams._seal(KEYS, kind, epoch, serial, count, payload)


def decode_or_reason(data: bytes):
    """The Datagram, or the WireError's reason; any other exception fails the test."""
    try:
        return decode_datagram(VERIFY, data)
    except WireError as e:
        assert e.reason in STABLE_REASONS, e
        return e.reason


@given(st.sampled_from([KIND_MESSAGES, KIND_PING]), st.integers(0, 2**64 - 1),
       st.integers(0, 2**64 - 1), st.integers(0, 0xFFFF) | st.integers(0, 4), bodies)
@settings(max_examples=400, deadline=None)
def test_a_sealed_body_decodes_to_a_datagram_or_is_refused_as_body(kind, epoch, serial, count,
                                                                   payload):
    outcome = decode_or_reason(sealed(kind, epoch, serial, count, payload))
    if isinstance(outcome, str):
        assert outcome == "body"  # the seal held: only the body can be wrong
        return
    assert isinstance(outcome, datagrams.Datagram)
    assert (outcome.kind, outcome.epoch, outcome.serial) == (kind, epoch, serial)
    if kind == KIND_PING:
        assert isinstance(outcome.body, dict) and outcome.messages == () and count == 0
    else:
        assert len(outcome.messages) == count > 0
        assert outcome.last_serial <= 2**64 - 1
        assert all(isinstance(m, dict) and m.get("type") in datagrams.EXPERIMENT_MESSAGE_TYPES
                   for m in outcome.messages)


@given(st.lists(message_like, min_size=1, max_size=4), st.integers(1, 2**40))
@settings(max_examples=200, deadline=None)
def test_sealed_messages_with_the_right_count_decode_exactly_when_every_type_is_known(
        messages, serial):
    outcome = decode_or_reason(sealed(KIND_MESSAGES, 7, serial, len(messages),
                                      datagrams.dumps(messages)))
    known = all(isinstance(m.get("type"), str) and m["type"] in datagrams.EXPERIMENT_MESSAGE_TYPES
                for m in messages)
    if known:
        assert isinstance(outcome, datagrams.Datagram) and list(outcome.messages) == messages
    else:
        assert outcome == "body"


@pytest.mark.parametrize("payload", [
    b'[{"type":[]}]', b'[{"type":{}}]', b'[{"type":["COMMAND"]}]',  # unhashable types
    b"[" * 5000 + b"]" * 5000, b'[{"type":"SET","n":' + b"9" * 5000 + b"}]",
    b"\xff\xfe[]", b'[{"type":"COMMAND"}', b"[1]", b"[[]]", b'["SET"]',
])
def test_sealed_but_malformed_bodies_are_refused_as_body(payload):
    assert decode_or_reason(sealed(KIND_MESSAGES, 7, 1, 1, payload)) == "body"


@pytest.mark.parametrize("kind, count, payload", [
    (KIND_PING, 1, b"{}"),           # a PING carries no messages
    (KIND_PING, 0, b"[]"),           # a PING's body is an object
    (KIND_MESSAGES, 0, b"[]"),       # MESSAGES carries at least one
    (KIND_MESSAGES, 2, b'[{"type":"SET"}]'),  # count and body disagree
])
def test_sealed_bodies_that_contradict_their_header_are_refused_as_body(kind, count, payload):
    assert decode_or_reason(sealed(kind, 7, 1, count, payload)) == "body"


def test_a_sealed_batch_past_the_last_serial_is_refused():
    body = b'[{"type":"SET"},{"type":"SET"}]'
    assert decode_or_reason(sealed(KIND_MESSAGES, 7, 2**64 - 1, 2, body)) == "body"
    assert isinstance(decode_or_reason(sealed(KIND_MESSAGES, 7, 2**64 - 2, 2, body)),
                      datagrams.Datagram)


def test_numbers_that_overflow_to_infinity_are_refused():
    body = b'{"type":"COMMAND","id":1e999}'
    data = struct.pack(">IBI", 5 + len(body), PROTOCOL_VERSION, len(body)) + body
    with pytest.raises(WireError, match="out of range"):
        FrameDecoder().feed(data)
    signed = datagrams._seal(KEYS, KIND_MESSAGES, 7, 1, 1,
                        b'[{"type":"COMMAND","target":"*","args":{"x":1e999}}]')
    with pytest.raises(WireError, match="out of range"):
        decode_datagram(VERIFY, signed)


@pytest.fixture(params=["json", "orjson"])
def codec(request):
    """Each test of the wire's JSON under both codecs: the standard library's
    (clients) and orjson (the daemon and the controller, backend/tap.py)."""
    wire.use_orjson(request.param == "orjson")
    yield request.param
    wire.use_orjson(False)


@pytest.mark.parametrize("text", [b"NaN", b"[Infinity]", b'{"x":-Infinity}', b"1e999",
                                  b'{"rate":-1E400}', b"[1,", b"\xff", b""])
def test_both_codecs_refuse_what_json_cannot_carry(codec, text):
    with pytest.raises(WireError) as e:
        wire.decode_json(text, "the body")
    assert e.value.reason == "body" and "the body is not UTF-8 JSON" in str(e.value)
    if b"e999" in text or b"E400" in text:
        assert "out of range" in str(e.value)


@pytest.mark.parametrize("value", [{"a": [1, 2.5, None, True, "é"]}, [], {"n": -0.5},
                                   {1: "int_key"}, [{"deep": [[[]]]}]])
def test_both_codecs_round_trip_alike(codec, value):
    data = wire.dumps(value)
    assert b" " not in data  # compact
    expected = {str(k): v for k, v in value.items()} if isinstance(value, dict) else value
    assert wire.decode_json(data, "x") == expected


def test_checked_dumps_refuses_nan_under_both_codecs(codec):
    with pytest.raises(ValueError):
        wire.checked_dumps({"x": [1.0, float("nan")]})
    with pytest.raises(ValueError):
        wire.checked_dumps({"x": float("inf"), "y": None})
    assert wire.checked_dumps({"y": None}) == b'{"y":null}'
    with pytest.raises(TypeError):
        wire.checked_dumps({"x": object()})
