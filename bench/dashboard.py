"""python -m bench dashboard: the dashboard of a 100-node star, in headless Chromium.

    python -m bench dashboard [--nodes 100] [--seconds 30] [--screenshot PNG]
    python -m bench dashboard serve --nodes 100      (the simulated experiment alone)

``serve`` runs a real controller (its HTTP port on 127.0.0.1, the
dashboard, the stats pipeline) in this process and simulates a star of
NODES nodes -- a hub and NODES-1 leaves, one point-to-point link each
(198.18.0.0/16 addresses, never routed: nothing is sent to them) -- by
feeding the controller what their daemons would send: an INFO each, then a
STATS frame per node per second with interface counters that grow at
changing rates.  It prints the dashboard's URL as a JSON line.

The measurement starts ``serve`` as a child, opens the page in headless
Chromium (seer.testing.browser: nothing leaves the machine), and reports:

* the page's paint times from its Performance API -- first contentful paint,
  and ``seer-graph-drawn`` (the graph's first render, every node in it);
* Chromium's CPU (every process under its chromedriver, from /proc) over
  ``--seconds`` while the page takes its once-a-second updates, as a share
  of one core -- with the ticks the page received, and the load average.

Targets (issue 15): paint within 2 s, under 20% of a core.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import positive, positive_number, table, write_json

PAINT_TARGET_MS = 2000
CPU_TARGET_PERCENT = 20


def star_toml(count: int) -> str:
    leaves = [f"n{i:03d}" for i in range(1, count)]
    lines = ['name = "star"', "[nodes.hub]", "router = true", "[nodes]"]
    lines += [f"{leaf} = {{}}" for leaf in leaves]
    for i, leaf in enumerate(leaves, 1):
        lines += [f"[links.l{i:03d}]", f'nodes = ["hub", "{leaf}"]',
                  f'subnet = "198.18.{i}.0/30"', 'bandwidth = "100mbit"']
    return "\n".join(lines) + "\n"


class StarFeed:
    """What a star's daemons would send: INFO once, STATS every second."""

    def __init__(self, controller: Any, described: dict[str, Any], reactor: Any) -> None:
        from seer.testing import FakeSession
        from seer.protocol.wire import Frame

        self.c, self.reactor, self.Frame = controller, reactor, Frame
        self.sessions = {}
        self.bytes: dict[tuple[str, str], list[float]] = {}
        self.seq = 0
        self.interfaces = {}
        for name, node in described["nodes"].items():
            interfaces = [{"name": i["name"], "addresses": [i["address"]]}
                          for i in node["interfaces"]]
            self.interfaces[name] = interfaces
            session = FakeSession(name, "node")
            controller.sessionOpened(session)
            controller.frameReceived(session, Frame({
                "type": "INFO", "name": name, "agents": {}, "epoch": 0, "serial": 0,
                "interfaces": interfaces,
                "addresses": [i["addresses"][0].split("/")[0] for i in interfaces]}))
            self.sessions[name] = session
        # The hub's interface toward each leaf, by the leaf's link.
        self.peer = {}
        for network in described["networks"].values():
            hub, leaf = sorted(network["members"], key=lambda m: m["node"] != "hub")
            self.peer[leaf["node"]] = hub["interface"]

    def rate(self, index: int, now: float) -> float:
        """A leaf's sending rate: every fifth busy (a slow wave up to 60 Mbit/s), the rest idle-ish."""
        if index % 5:
            return 20e3
        return 30e6 * (1 + math.sin(now / 7 + index))

    def send(self) -> None:
        now = self.reactor.seconds()
        self.seq += 1
        hub_series = []
        for index, (name, session) in enumerate(sorted(self.sessions.items())):
            session.sent.clear()  # what the controller sends a fake node goes nowhere
            if name == "hub":
                continue
            tx = self.bytes.setdefault((name, "tx"), [0.0])
            tx[0] += self.rate(index, now) / 8
            series = [[{"interface": "eth1"}, {
                "transmit_bytes_total": int(tx[0]), "transmit_packets_total": int(tx[0] / 1000),
                "receive_bytes_total": int(tx[0] / 40), "receive_packets_total": 0,
                "receive_drops_total": 0, "transmit_drops_total": 0}]]
            hub_series.append([{"interface": self.peer[name]}, {
                "transmit_bytes_total": int(tx[0] / 40), "transmit_packets_total": 0,
                "receive_bytes_total": int(tx[0]), "receive_packets_total": int(tx[0] / 1000),
                "receive_drops_total": 0, "transmit_drops_total": 0}])
            self._stats(session, now, series)
        self._stats(self.sessions["hub"], now, hub_series)

    def _stats(self, session: Any, now: float, series: list) -> None:
        self.c.frameReceived(session, self.Frame({
            "type": "STATS", "time": now, "seq": self.seq, "interval": 1.0,
            "readings": [{"poller": "interface", "t": now, "series": series}]}))


def serve(count: int, folder: Path) -> int:
    """The simulated star's controller, until SIGTERM; prints {"url": ...}."""
    from twisted.internet import reactor, task

    from backend.controller import Controller
    from seer.protocol import certs
    from seer.testbed.topology import describe, parse_topology

    folder.mkdir(parents=True, exist_ok=True)
    described = describe(parse_topology(star_toml(count), "star.toml"))
    (folder / "topology.json").write_text(json.dumps(described))
    certs.init(folder / "certs", [], ["experimenter"], experiment="star")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))  # a free port: the controller's PINGs reach no one
        group_port = probe.getsockname()[1]
    controller = Controller(
        (f"239.255.{os.getpid() % 250 + 1}.{count % 250 + 1}", group_port), "star", reactor=reactor, certs=folder / "certs",
        listen=("127.0.0.1", 0), interface="127.0.0.1", state_dir=folder / "state",
        stats={"http": "127.0.0.1:0", "link_names": {
            net["subnet"]: name for name, net in described["networks"].items()}},
        dashboard={"topology_file": str(folder / "topology.json")})

    def started() -> None:
        controller.startService()
        feed = StarFeed(controller, described, reactor)
        task.LoopingCall(feed.send).start(1.0)

        def announce() -> None:
            print(json.dumps({"url": controller.dashboard.url}), flush=True)

        reactor.callLater(0.5, announce)

    reactor.callWhenRunning(started)
    reactor.addSystemEventTrigger("before", "shutdown", controller.stopService)
    reactor.run()
    return 0


def measure(count: int, seconds: float, screenshot: str | None) -> dict[str, Any]:
    from selenium.webdriver.support.ui import WebDriverWait

    from seer.testing.browser import browser_pids, chromium, console_errors, cpu_seconds

    folder = Path(tempfile.mkdtemp(prefix="seer-bench-dashboard-"))
    child = subprocess.Popen([sys.executable, "-m", "bench.dashboard", "serve", "--nodes",
                              str(count), "--folder", str(folder)],
                             stdout=subprocess.PIPE, stderr=open(folder / "serve.log", "wb"),
                             text=True)
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60)  # bounded: it may not start
        if not ready:
            raise RuntimeError(f"the simulated star did not start: see {folder}/serve.log")
        url = json.loads(child.stdout.readline())["url"]
        with chromium() as driver:
            driver.get(url)
            WebDriverWait(driver, 30).until(lambda d: d.execute_script(
                "return window.seer && window.seer.ticks > 0 && "
                f"window.seer.graph.cy.nodes('.host').length === {count}"))
            paint = driver.execute_script(
                "const p = {}; for (const e of performance.getEntriesByType('paint')) "
                "p[e.name] = e.startTime; const g = performance.getEntriesByName("
                "'seer-graph-drawn'); p['seer-graph-drawn'] = g.length ? g[0].startTime : null;"
                " return p;")
            pids = browser_pids(driver)
            load_before = os.getloadavg()
            ticks_before = driver.execute_script("return window.seer.ticks")
            cpu_before, started = cpu_seconds(pids), time.monotonic()
            time.sleep(seconds)  # a benchmark: the page updates by itself meanwhile
            cpu_after, elapsed = cpu_seconds(browser_pids(driver)), time.monotonic() - started
            ticks = driver.execute_script("return window.seer.ticks") - ticks_before
            errors = console_errors(driver)
            if screenshot:
                driver.save_screenshot(screenshot)
    finally:
        child.terminate()  # our own child, by its PID
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return {"nodes": count, "seconds": round(elapsed, 1),
            "first_contentful_paint_ms": round(paint.get("first-contentful-paint") or 0),
            "graph_drawn_ms": round(paint.get("seer-graph-drawn") or 0),
            "chromium_cpu_percent_of_a_core": round(100 * (cpu_after - cpu_before) / elapsed, 1),
            "ticks_received": ticks, "console_errors": len(errors),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench dashboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", choices=("measure", "serve"), default="measure")
    parser.add_argument("--nodes", type=positive, default=100)
    parser.add_argument("--seconds", type=positive_number, default=30.0,
                        help="how long Chromium's CPU is measured (default: 30 s)")
    parser.add_argument("--folder", help="serve: where its certificates and state go")
    parser.add_argument("--screenshot", help="save the page as this PNG at the end")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    if args.mode == "serve":
        folder = Path(args.folder or tempfile.mkdtemp(prefix="seer-star-"))
        return serve(args.nodes, folder)
    result = measure(args.nodes, args.seconds, args.screenshot)
    print(table(f"dashboard: {args.nodes}-node star in headless Chromium",
                ["measure", "value", "target"],
                [["first contentful paint", f"{result['first_contentful_paint_ms']} ms",
                  f"< {PAINT_TARGET_MS} ms"],
                 ["graph drawn", f"{result['graph_drawn_ms']} ms", f"< {PAINT_TARGET_MS} ms"],
                 ["Chromium CPU while updating",
                  f"{result['chromium_cpu_percent_of_a_core']}% of a core",
                  f"< {CPU_TARGET_PERCENT}%"],
                 ["updates received", f"{result['ticks_received']} in {result['seconds']} s",
                  "~1 a second"],
                 ["load average before / after", f"{result['load_before'][0]} / "
                                                 f"{result['load_after'][0]}", ""]]))
    print(f"results: {write_json('dashboard', result, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
