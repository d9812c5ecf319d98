"""LINK: shape one of the node's experiment interfaces, or take it down.

START applies `bandwidth` (a tbf qdisc), `delay` (netem, where the kernel
has it -- a clear error where it does not) and `loss` (an nftables random
drop of the packets *arriving* on the interface); STOP removes all of it.

Loss is dropped on the way in, where a lossy wire loses packets: a drop on
the way out (an egress hook or qdisc) is reported to the sending socket
(ENOBUFS), so ping counts nothing lost and TCP takes it for local
congestion.  Arriving packets are all the node's own interface offers, so
`loss` makes the link lossy into this node: a ping from either end loses
requests or replies alike; for loss of the other direction's data too, set
it on the node at the other end as well.  DOWN and UP take the link down and up.  Only the
node's experiment interfaces can be touched -- never the control interface,
never loopback.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed

from backend.agent import Agent, ProcessFailed, Var
from seer.protocol.vartypes import format_rate

NFT_TABLE = "seer_link_loss"


class Link(Agent):
    AGENT_TYPE = "LINK"
    NICE_NAME = "Shape an interface (bandwidth, delay, loss) or take it down and up"
    MENU = "Control"
    VARIABLES = [
        Var("interface", "string", "", "experiment interface to act on, e.g. eth1"),
        Var("bandwidth", "rate", 0, "rate limit, e.g. 10mbit (0: none)", 0, 100e9),
        Var("delay", "string", "", "added delay, e.g. 20ms (needs netem)"),
        Var("loss", "float", 0.0,
            "percent of the packets arriving on the interface that are dropped", 0, 100),
    ]

    def setup(self) -> None:
        self.applied: dict[str, Any] = {}

    def _interface(self) -> str:
        mine = [i["name"] for i in self.context.node_info.get("interfaces") or []]
        name = self.getNodeVar("interface")
        if not name:
            raise ValueError(f"set interface (one of: {', '.join(mine) or 'none'})")
        if name not in mine:
            raise ValueError(f"{name} is not an experiment interface of {self.nodename} "
                             f"(it has: {', '.join(mine) or 'none'}); LINK never touches others")
        return name

    def _tc(self, *args: str) -> Deferred:
        return self.runProcess(["tc", *args])

    def handleSTART(self):
        device = self._interface()
        bandwidth = self.getNodeVar("bandwidth")
        delay = self.getNodeVar("delay")
        loss = self.getNodeVar("loss")
        d = self._clear(device)
        if delay:
            d.addCallback(lambda _: self._netem(device, delay))
        else:
            d.addCallback(lambda _: False)

        def rate_and_loss(netem_used: bool) -> Deferred:
            steps = succeed(None)
            if bandwidth:
                burst = max(1600, int(bandwidth / 8 / 250))  # 4 ms worth, at least a frame
                parent = ["parent", "1:", "handle", "2:"] if netem_used else ["root", "handle", "1:"]
                steps.addCallback(lambda _: self._tc(
                    "qdisc", "add", "dev", device, *parent, "tbf", "rate", format_rate(bandwidth),
                    "burst", str(burst), "latency", "100ms"))
            if loss:
                steps.addCallback(lambda _: self._nft_loss(device, loss))
            return steps

        d.addCallback(rate_and_loss)
        self.applied = {"interface": device, "bandwidth": format_rate(bandwidth) if bandwidth else None,
                        "delay": delay or None, "loss": loss or None}
        return d.addCallback(lambda _: self.applied)

    def _netem(self, device: str, delay: str) -> Deferred:
        args = ["qdisc", "add", "dev", device, "root", "handle", "1:", "netem", "delay", delay]

        def missing(failure: Any) -> bool:
            failure.trap(ProcessFailed)
            if "unknown" not in str(failure.value).lower():
                return failure
            raise ValueError("delay needs the netem qdisc, which this kernel does not have; "
                             "bandwidth (tbf) and loss (nftables) work without it")

        return self._tc(*args).addCallbacks(lambda _: True, missing)

    def _nft_loss(self, device: str, loss: float) -> Deferred:
        # In hundredths of a percent: 0.25% is 25 of every 10,000 packets.
        per_10k = str(round(loss * 100))
        table = f"{NFT_TABLE}_{device}"
        d = self.runProcess(["nft", "add", "table", "netdev", table])
        d.addCallback(lambda _: self.runProcess(
            ["nft", "add", "chain", "netdev", table, "ingress",
             f'{{ type filter hook ingress device "{device}" priority 0; }}']))
        d.addCallback(lambda _: self.runProcess(
            ["nft", "add", "rule", "netdev", table, "ingress", "numgen", "random", "mod", "10000",
             "<", per_10k, "counter", "drop"]))
        return d

    def _clear(self, device: str) -> Deferred:
        # Both may fail harmlessly: nothing was there.
        d = self.runProcess(["tc", "qdisc", "del", "dev", device, "root"]).addErrback(lambda _: None)
        d.addCallback(lambda _: self.runProcess(
            ["nft", "delete", "table", "netdev", f"{NFT_TABLE}_{device}"]).addErrback(lambda _: None))
        return d

    def handleSTOP(self):
        device = self._interface()
        self.applied = {}
        return self._clear(device).addCallback(lambda _: {"interface": device, "shaping": None})

    def handleDOWN(self):
        return self._set_link("down")

    def handleUP(self):
        return self._set_link("up")

    def _set_link(self, state: str) -> Deferred:
        device = self._interface()
        return self.runProcess(["ip", "link", "set", "dev", device, state]).addCallback(
            lambda _: {"interface": device, "state": state})

    def handleSTATS(self):
        out = super().handleSTATS()
        out["applied"] = self.applied
        return out
