"""The dashboard of a simulated 100-node star in headless Chromium: it paints
within 2 s and the browser stays under 20% of a core while the page takes
its updates (issue 15).  bench/dashboard.py does the work -- a controller
fed what 100 daemons would send, Chromium's CPU read from /proc -- and
`python -m bench dashboard` prints the same figures with the load.

Timing on a shared machine: a run under heavy load (uptime above the
cores) can miss; rerun it when the load is low.
"""

from __future__ import annotations

import pytest

from seer.testing import browser

REASON = browser.why_not()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(REASON is not None, reason=REASON or "")]


def test_a_100_node_star_paints_within_2_s_and_updates_in_under_a_fifth_of_a_core():
    from bench.dashboard import measure

    result = measure(100, seconds=15.0, screenshot=None)
    assert result["console_errors"] == 0, result
    assert result["ticks_received"] >= 10, result  # it was updating all along
    assert 0 < result["graph_drawn_ms"] < 2000, result
    assert result["chromium_cpu_percent_of_a_core"] < 20, result
