"""What a node tells the controller about itself: interfaces and addresses.

Read from ``ip -j addr show`` (iproute2) without blocking the reactor.  The
loopback interface and the control interface are left out: targets such as
``has:198.18.1.2`` and address pools are about the experiment's network.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.utils import getProcessOutput
from twisted.logger import Logger

log = Logger()


def parse_ip_addr(text: str, control_address: str) -> tuple[list[str], list[dict[str, Any]]]:
    """(addresses, interfaces) from ``ip -j addr show`` output."""
    addresses: list[str] = []
    interfaces: list[dict[str, Any]] = []
    try:
        links = json.loads(text or "[]")
    except ValueError:
        return addresses, interfaces
    for link in links if isinstance(links, list) else []:
        name = link.get("ifname")
        infos = [a for a in link.get("addr_info", []) if a.get("family") in ("inet", "inet6")]
        if not name or name == "lo" or any(a.get("local") == control_address for a in infos):
            continue
        usable = [a for a in infos if a.get("scope") != "link"]
        interfaces.append({
            "name": name.split("@", 1)[0],
            "addresses": [f"{a['local']}/{a.get('prefixlen', 32)}" for a in usable],
            "mac": link.get("address", ""),
        })
        addresses.extend(a["local"] for a in usable)
    return addresses, interfaces


def discover(reactor: Any, control_address: str) -> Deferred:
    """Fires with (addresses, interfaces); an empty pair if `ip` is unavailable."""
    ip = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")
    if ip is None:
        log.warn("`ip` (iproute2) is not installed; reporting no experiment addresses")
        return succeed(([], []))
    d = getProcessOutput(ip, ["-j", "addr", "show"], env=dict(os.environ), reactor=reactor)

    def failed(failure: Any) -> tuple[list[str], list[dict[str, Any]]]:
        log.warn("cannot list interfaces with `ip -j addr` ({error}); reporting none",
                 error=failure.getErrorMessage())
        return [], []

    return d.addCallbacks(lambda out: parse_ip_addr(out.decode(), control_address), failed)
