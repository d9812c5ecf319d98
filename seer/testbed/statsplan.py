"""What a testbed adds to its processes for the stats pipeline.

* the controller serves ``/metrics`` and the dashboard on 127.0.0.1:HTTP_PORT
  of its own namespace, knows the LANs' and links' names (``--link-names``)
  and the whole topology the dashboard draws (``--topology``: TOPOLOGY_FILE
  in the state folder, the topology as :func:`~seer.testbed.topology.describe`
  gives it), and tells clients the URL the host shell reaches it at
  (``--http-url``);
* the relay forwards a second host port to that HTTP port (so ``curl``,
  Prometheus, `seer status --json`'s ``metrics`` and `seer dashboard` work
  from the host);
* for shaped LANs, the link poller (:mod:`seer.testbed.linkstats`) reads
  the bridge ports' queues, which no daemon sees.

:func:`apply` adds all of it to the supervisor's plan that
:mod:`seer.testbed.runner` made; :func:`state` is what testbed.json gets.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from seer.testbed import build
from seer.testbed.topology import Topology, describe

#: The controller's HTTP port inside its own namespace (nothing else is there).
HTTP_PORT = 9108
#: The topology the controller's dashboard draws, in the state folder.
TOPOLOGY_FILE = "topology.json"


def switch_ports(topology: Topology) -> dict[str, list[str]]:
    """{bridge port: [network, member node]} of every shaped LAN -- the ports
    build.py names l<k>p<j>, k the network's place, j the member's."""
    ports = {}
    for k, net in enumerate(topology.networks.values()):
        if net.kind != "lan" or not net.bandwidth:
            continue
        for j, iface in enumerate(net.interfaces):
            ports[f"l{k}p{j}"] = [net.name, iface.node]
    return ports


def apply(programs: list[dict[str, Any]], topology: Topology, folder: Path,
          http_host_port: int, control: str, identity: str) -> list[dict[str, Any]]:
    """The plan's programs with the stats pipeline's arguments and its link poller."""
    name = topology.name
    url = f"http://127.0.0.1:{http_host_port}"
    (folder / TOPOLOGY_FILE).write_text(json.dumps(describe(topology), indent=1))
    for program in programs:
        if program["name"] == "controller":
            program["argv"] += ["--http", f"127.0.0.1:{HTTP_PORT}", "--http-url", url,
                                "--topology", str(folder / TOPOLOGY_FILE),
                                *[f"--link-names={net.subnet}={net.name}"
                                  for net in topology.networks.values()]]
        elif program["name"] == "relay":
            program["argv"] += ["--forward", f"{http_host_port}=127.0.0.1:{HTTP_PORT}"]
    ports = switch_ports(topology)
    if ports:
        programs.append({
            # "_" first: no node can have this name (topology.py), so it never clashes.
            "name": "_linkstats", "log": str(folder / "logs" / "_linkstats.log"),
            "cwd": str(folder),
            "argv": [sys.executable, "-m", "seer.testbed.linkstats",
                     "--switch-ns", build.switch_ns(name),
                     "--control-ns", build.controller_ns(name), "--controller", control,
                     "--certs", str(folder / "certs"), "--identity", identity,
                     "--ports", json.dumps(ports)]})
    return programs


def state(http_host_port: int) -> dict[str, Any]:
    """What testbed.json says of the stats pipeline: where /metrics is, from the host."""
    return {"http_port": http_host_port,
            "metrics": f"http://127.0.0.1:{http_host_port}/metrics"}
