"""A benchmark poller: 30 series a node, like a node with three busy interfaces.

Three interfaces' eight counters, growing as 5 Mbit/s of 1000-byte packets
would make them, and six gauges: 30 values a reading.  `python -m bench
stats` gives it to simulated nodes (which have no experiment interfaces of
their own) to load the controller as 100 real nodes would.
"""

from __future__ import annotations

from backend.node.pollers import Poller

COUNTERS = ("receive_bytes_total", "receive_packets_total", "receive_errors_total",
            "receive_drops_total", "transmit_bytes_total", "transmit_packets_total",
            "transmit_errors_total", "transmit_drops_total")


class Synthetic(Poller):
    NAME = "interface"  # the interface aggregator and Prometheus take it as real

    def send_req(self) -> None:
        t = self.clock.seconds()
        reading = []
        for i in range(1, 4):
            packets = int(t * 625)
            values = {name: 0 for name in COUNTERS}
            values.update(transmit_bytes_total=packets * 1000, transmit_packets_total=packets,
                          receive_bytes_total=packets * 500, receive_packets_total=packets // 2)
            reading.append([{"interface": f"eth{i}"}, values])
        reading.append([{"interface": "gauges"}, {f"g{k}": float(k) for k in range(6)}])
        self.update(t, reading)
