"""Tagged datagrams: each node checks its own tag; no node can tag for another."""

from __future__ import annotations

import pytest

from bench import hostile
from seer.protocol.datagrams import (
    KIND_MESSAGES,
    KIND_PING,
    TAGGED,
    SigningKeys,
    decode_datagram,
    encode_datagram,
    peek_datagram_header,
    peek_ping,
)
from seer.protocol.tags import TAG_LEN, NodeTag, TagTable
from seer.protocol.wire import WireError

MESSAGE = {"type": "COMMAND", "agent": "NOOP", "group": "g", "command": "ECHO", "target": "*"}


@pytest.fixture(scope="module")
def keys():
    return SigningKeys.generate()


def node_keys(keys, table, node):
    return keys.verifying().with_tag(NodeTag.from_welcome(table.admit(node)))


def seal(keys, table, serial=1, message=MESSAGE):
    return encode_datagram(keys, KIND_MESSAGES, 7, serial, [message], tags=table)


def test_every_node_checks_its_own_tag_and_no_signature_is_made(keys):
    table = TagTable()
    nodes = {f"n{i}": node_keys(keys, table, f"n{i}") for i in range(1, 6)}
    data = seal(keys, table)
    assert data[5] == KIND_MESSAGES | TAGGED and peek_datagram_header(data)[0] == KIND_MESSAGES
    # header (24) + body + 5 tags + count (2) + HMAC (32): no 256-byte signature
    assert len(data) == 24 + len(b'[{"type":"COMMAND","agent":"NOOP","group":"g",'
                                 b'"command":"ECHO","target":"*"}]') + 5 * TAG_LEN + 2 + 32
    for name, verifying in nodes.items():
        assert decode_datagram(verifying, data).messages == (MESSAGE,), name


def test_a_node_keeps_its_slot_and_key_when_it_registers_again(keys):
    table = TagTable()
    first = table.admit("n1")
    table.admit("n2")
    assert table.admit("n1") == first and len(table) == 2


def test_a_compromised_node_cannot_tag_for_another(keys):
    table = TagTable()
    victim = node_keys(keys, table, "victim")
    given = table.admit("intruder")
    stolen = hostile.StolenKeys("intruder", 7, 0, keys.hmac_key, given["slot"],
                                bytes.fromhex(given["key"]))
    forged = hostile.seal_tagged(stolen, 7, 1, 1, hostile.forged_command(1), slots=2)
    intruder = keys.verifying().with_tag(NodeTag.from_welcome(given))
    assert decode_datagram(intruder, forged).messages  # its own tag is right ...
    with pytest.raises(WireError) as e:
        decode_datagram(victim, forged)  # ... the victim's is a guess
    assert e.value.reason == "tag"
    # A real datagram moved to another epoch, its HMAC made again: the tags
    # cover the header, so they no longer match.
    moved = hostile.reseal(keys.hmac_key, seal(keys, table), 8)
    with pytest.raises(WireError) as e:
        decode_datagram(victim, moved)
    assert e.value.reason == "tag"


def test_a_node_that_joined_later_has_no_tag_but_takes_the_datagram_by_tls(keys):
    table = TagTable()
    node_keys(keys, table, "n1")
    data = seal(keys, table)
    late = node_keys(keys, table, "n2")
    with pytest.raises(WireError) as e:
        decode_datagram(late, data)
    assert e.value.reason == "tag"
    assert decode_datagram(late, data, by_tls=True).messages == (MESSAGE,)  # a REPAIR


def test_without_a_tag_of_its_own_a_node_refuses_tagged_datagrams(keys):
    table = TagTable()
    node_keys(keys, table, "n1")
    with pytest.raises(WireError) as e:
        decode_datagram(keys.verifying(), seal(keys, table))
    assert e.value.reason == "tag"


def test_too_many_nodes_or_too_big_a_body_is_signed_instead(keys):
    table = TagTable(limit=3)
    nodes = [node_keys(keys, table, f"n{i}") for i in range(4)]
    data = seal(keys, table)
    assert data[5] == KIND_MESSAGES  # RSA-signed: four nodes, room for three
    assert all(decode_datagram(n, data).messages for n in nodes)
    hundred = TagTable()
    last = [node_keys(keys, hundred, f"n{i}") for i in range(100)][-1]
    # 800 bytes of tags would not fit beside this body; a 256-byte signature does.
    huge = dict(MESSAGE, args={"x": "y" * 64500})
    data = seal(keys, hundred, message=huge)
    assert data[5] == KIND_MESSAGES and decode_datagram(last, data).messages == (huge,)
    assert seal(keys, TagTable())[5] == KIND_MESSAGES  # nobody to tag for yet


def test_tagged_pings_are_read_before_the_keys_and_checked_after(keys):
    table = TagTable()
    n1 = node_keys(keys, table, "n1")
    ping = encode_datagram(keys, KIND_PING, 7, 3, body={"controller": "127.0.0.1:7700"},
                           tags=table)
    assert peek_ping(ping) == {"controller": "127.0.0.1:7700"}
    assert decode_datagram(n1, ping).body == {"controller": "127.0.0.1:7700"}


@pytest.mark.parametrize("cut", [1, 2, 33, 40])
def test_a_cut_or_inflated_tag_table_is_refused(keys, cut):
    table = TagTable()
    n1 = node_keys(keys, table, "n1")
    data = seal(keys, table)
    with pytest.raises(WireError) as e:
        decode_datagram(n1, data[:-cut])
    assert e.value.reason in ("mac", "truncated")
    # The right HMAC over a count of more tags than there are bytes.
    inflated = bytearray(data[:-32])
    inflated[-2:] = (5000).to_bytes(2, "big")
    with pytest.raises(WireError) as e:
        decode_datagram(n1, hostile.reseal(keys.hmac_key, bytes(inflated) + bytes(32), 7))
    assert e.value.reason == "truncated"


def test_welcome_tags_that_cannot_be_used_are_ignored():
    assert NodeTag.from_welcome(None) is None
    assert NodeTag.from_welcome({"slot": "x", "key": "00" * 32}) is None
    assert NodeTag.from_welcome({"slot": 1, "key": "00"}) is None
    assert NodeTag.from_welcome({"slot": -1, "key": "00" * 32}) is None
    assert NodeTag.from_welcome({"slot": 2, "key": "00" * 32}).slot == 2
