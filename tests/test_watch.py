"""seer watch's screen, from collected state (no controller needed)."""

from __future__ import annotations

from seer.watch import WatchState, render
from seer.protocol.wire import Frame


def test_the_screen_fits_80_columns_and_shows_what_came_in():
    state = WatchState()
    state.take(Frame({"type": "STATUS", "controller": "ctl", "serial": 42,
                      "datagrams": {"messages": 40, "pings": 9},
                      "nodes": [{"name": "client1", "up": True, "serial": 42, "lag": 0},
                                {"name": "server1", "up": False, "serial": 30, "lag": 12}]}))
    state.stats = {"client1": {"dropped_mac": 2, "rx_dropped": 1, "repairs_received": 5}}
    state.take(Frame({"type": "STREAM", "agent": "HTTP", "group": "web", "node": "client1",
                      "name": "clients", "data": {"requests": 120, "bytes": 123456789,
                                                  "errors": 1, "launch_rate": 5.0}}))
    state.take(Frame({"type": "REPORT", "agent": "PING", "group": "p", "node": "client1",
                      "event": "ping_done", "time": 0,
                      "data": {"target": "server1", "rtt_avg": 0.123, "loss": 0.0}}))
    lines = render(state, now=0)
    assert all(len(line) <= 80 for line in lines)
    text = "\n".join(lines)
    assert "serial 42" in text and "nodes 1/2 up   largest lag 0" in text
    assert "client1       up           42     0      3        5" in text
    assert "server1       DOWN         30    12" in text
    assert "HTTP     web         client1     requests=120 bytes=123.5M errors=1" in text
    assert "client1    PING p ping_done target=server1 rtt_avg=0.123 loss=0" in text


def test_long_lines_are_cut_at_80():
    state = WatchState()
    state.take(Frame({"type": "REPORT", "node": "n" * 50, "event": "e" * 60, "time": 0}))
    assert all(len(line) <= 80 for line in render(state, now=0))
