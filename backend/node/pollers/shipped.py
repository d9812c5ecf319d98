"""The pollers every daemon runs: interfaces, qdiscs, the host, agent groups
and their processes.

Each reads only what its node has (its own network namespace's files and
netlink) and only the node's experiment interfaces -- the ones its INFO
lists: not loopback, not the control interface.
"""

from __future__ import annotations

import time
from typing import Any

from backend.node.pollers import netlink, procfs
from backend.node.pollers.base import Poller, Reading

IFACE = ("interface",)
QDISC = ("interface", "qdisc", "handle")
GROUP = ("agent", "group")
#: Values of a traffic controller's "clients" stats that are not counters.
CLIENT_GAUGES = frozenset({"running", "elapsed", "launch_rate", "pid"})
#: At most this many counters per agent group (the series count stays bounded).
MAX_COUNTERS = 64


class InterfacePoller(Poller):
    """Every experiment interface's counters, from /proc/net/dev (one read a
    second for all of them)."""

    NAME = "interface"
    METRICS = {
        "receive_bytes_total": ("bytes", IFACE, "bytes received, link-layer (Ethernet) "
                                                "headers included, as the kernel counts them"),
        "receive_packets_total": ("packets", IFACE, "packets received"),
        "receive_errors_total": ("packets", IFACE, "receive errors"),
        "receive_drops_total": ("packets", IFACE, "packets dropped on receive"),
        "transmit_bytes_total": ("bytes", IFACE, "bytes sent, link-layer headers included"),
        "transmit_packets_total": ("packets", IFACE, "packets sent"),
        "transmit_errors_total": ("packets", IFACE, "transmit errors"),
        "transmit_drops_total": ("packets", IFACE, "packets dropped on transmit"),
    }

    def send_req(self) -> None:
        text = procfs.read("/proc/net/dev") or ""
        wanted = set(self.node.interfaces())
        counters = procfs.parse_net_dev(text)
        self.update(self.clock.seconds(),
                    [[{"interface": name}, values] for name, values in sorted(counters.items())
                     if name in wanted])


class QdiscPoller(Poller):
    """The queueing disciplines of the experiment interfaces (the shaped
    links' queues), over netlink without blocking; ``noqueue`` is left out."""

    NAME = "qdisc"
    METRICS = {
        "sent_bytes_total": ("bytes", QDISC, "bytes the qdisc sent (link-layer headers included)"),
        "sent_packets_total": ("packets", QDISC, "packets the qdisc sent"),
        "drops_total": ("packets", QDISC, "packets the qdisc dropped (queue full)"),
        "overlimits_total": ("events", QDISC, "times a packet was held back by the rate limit"),
        "requeues_total": ("packets", QDISC, "packets requeued"),
        "backlog_bytes": ("bytes", QDISC, "bytes queued now"),
        "backlog_packets": ("packets", QDISC, "packets queued now"),
        "rate_limit_bytes_per_second": ("bytes/s", QDISC, "the configured rate (tbf only)"),
    }

    def __init__(self, *args: Any, reader: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reader = reader
        self._names: dict[int, str] = {}

    @property
    def reader(self) -> Any:
        if self._reader is None:
            self._reader = netlink.NetlinkReader(self.clock)
        return self._reader

    def send_req(self) -> None:
        self.reader.dump(netlink.RTM_GETQDISC).addCallbacks(self._qdiscs, self._failed)

    def _qdiscs(self, qdiscs: list[dict[str, Any]]) -> Any:
        if any(q["ifindex"] not in self._names for q in qdiscs):
            # A new interface (or the first reading): learn the names once.
            return self.reader.dump(netlink.RTM_GETLINK).addCallback(
                self._links, qdiscs).addErrback(self._failed)
        self._report(qdiscs)
        return None

    def _links(self, links: list[tuple[int, str]], qdiscs: list[dict[str, Any]]) -> None:
        self._names = dict(links)
        self._report(qdiscs)

    def _report(self, qdiscs: list[dict[str, Any]]) -> None:
        started = time.thread_time()
        wanted = set(self.node.interfaces())
        reading: Reading = []
        for q in qdiscs:
            name = self._names.get(q["ifindex"])
            if name not in wanted or q["kind"] in ("noqueue", ""):
                continue
            labels = {"interface": name, "qdisc": q["kind"], "handle": q["handle"]}
            reading.append([labels, q["values"]])
        self.cpu_seconds += time.thread_time() - started
        self.update(self.clock.seconds(), reading)

    def _failed(self, failure: Any) -> None:
        # No update: counted as no_response at the next interval; the error
        # itself once in a while.
        self.errors += 1
        if self.errors == 1 or self.errors % 100 == 0:
            from twisted.logger import Logger

            Logger().warn("poller qdisc: {error} ({n} so far)", error=failure.getErrorMessage(),
                          n=self.errors)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class HostPoller(Poller):
    """The host's CPU, memory and load (/proc/stat, /proc/meminfo, /proc/loadavg).

    Testbed nodes share one host, so they all report the same host."""

    NAME = "host"
    METRICS = {
        "cpu_busy_seconds_total": ("seconds", (), "CPU time spent on anything but idle, all CPUs"),
        "cpu_idle_seconds_total": ("seconds", (), "CPU time idle (and waiting for I/O), all CPUs"),
        "cpus": ("CPUs", (), "number of CPUs"),
        "memory_total_bytes": ("bytes", (), "memory of the host"),
        "memory_available_bytes": ("bytes", (), "memory available for new work"),
        "load1": ("processes", (), "load average over 1 minute"),
        "load5": ("processes", (), "load average over 5 minutes"),
        "load15": ("processes", (), "load average over 15 minutes"),
    }

    def send_req(self) -> None:
        values: dict[str, float] = {}
        for path, parse in (("/proc/stat", procfs.parse_cpu), ("/proc/meminfo",
                            procfs.parse_meminfo), ("/proc/loadavg", procfs.parse_loadavg)):
            text = procfs.read(path)
            if text:
                values.update(parse(text))
        self.update(self.clock.seconds(), [[{}, values]])


def group_counters(agent: Any) -> dict[str, float]:
    """An agent instance's counters as STATS has them: its own ``counters``,
    and its traffic controllers' summed, under ``clients.NAME``."""
    out: dict[str, float] = {}
    for name, value in (getattr(agent, "counters", None) or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[str(name)] = value
    clients: dict[str, float] = {}
    for stats in list((getattr(agent, "client_stats", None) or {}).values()):
        for name, value in stats.items():
            if name in CLIENT_GAUGES or isinstance(value, bool) \
                    or not isinstance(value, (int, float)):
                continue
            clients[name] = clients.get(name, 0) + value
    out.update({f"clients.{k}": v for k, v in clients.items()})
    return dict(sorted(out.items())[:MAX_COUNTERS])


class AgentPoller(Poller):
    """Each agent group's counters (what STATS returns) and run state, read
    from the agent instances the daemon holds -- nobody has to ask."""

    NAME = "agent"
    METRICS = {
        "running": ("boolean", GROUP, "1 while the group's run is under way on the node"),
        "counter_total": ("count", GROUP + ("counter",),
                          "each of the group's counters (STATS's counters; a traffic "
                          "generator's clients' as clients.NAME)"),
    }

    def send_req(self) -> None:
        reading: Reading = []
        for (agent_type, group), agent in sorted(self.node.groups().items()):
            labels = {"agent": agent_type, "group": group}
            state = self.node.run_state((agent_type, group))
            reading.append([labels, {"running": int(state == "running")}])
            for name, value in group_counters(agent).items():
                reading.append([dict(labels, counter=name), {"counter_total": value}])
        self.update(self.clock.seconds(), reading)


class ProcessPoller(Poller):
    """CPU and memory of the processes each agent group started (and theirs), from /proc.

    CPU counts a process's own time and its waited-for children's; the time
    of a group's processes that ended stays in the total (as last read), so
    the counter never goes down.  RSS is summed over the processes (shared
    pages count once per process)."""

    NAME = "process"
    METRICS = {
        "cpu_seconds_total": ("seconds", GROUP, "CPU time of the group's processes"),
        "resident_bytes": ("bytes", GROUP, "resident memory of the group's processes, summed"),
        "running": ("processes", GROUP, "processes of the group alive now"),
    }

    def __init__(self, *args: Any, proc: str = "/proc", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.proc = proc
        #: group -> {pid: (last CPU seconds, parent pid)}; the CPU of those gone;
        #: the last total sent (the counter never goes down).
        self._last: dict[tuple[str, str], dict[int, tuple[float, int]]] = {}
        self._gone: dict[tuple[str, str], float] = {}
        self._sent: dict[tuple[str, str], float] = {}

    def send_req(self) -> None:
        reading: Reading = []
        groups = self.node.groups()
        for key in sorted(groups):
            now: dict[int, tuple[float, int]] = {}
            rss = 0
            for pid in procfs.process_tree(self.node.group_pids(key), self.proc):
                stat = procfs.read(f"{self.proc}/{pid}/stat")
                statm = procfs.read(f"{self.proc}/{pid}/statm")
                if not stat or not statm:
                    continue
                try:
                    now[pid] = procfs.parse_pid_stat(stat)
                    rss += procfs.parse_statm_rss(statm)
                except (IndexError, ValueError):
                    continue
            # A process that ended under a parent still here was reaped by it:
            # its time is in the parent's now.  One whose parent is gone too
            # (or is the daemon) took its time with it: keep it in the total.
            gone = self._gone.get(key, 0.0) + sum(
                cpu for pid, (cpu, parent) in self._last.get(key, {}).items()
                if pid not in now and parent not in now)
            self._gone[key], self._last[key] = gone, now
            total = max(self._sent.get(key, 0.0), sum(c for c, _ in now.values()) + gone)
            self._sent[key] = total
            reading.append([{"agent": key[0], "group": key[1]},
                            {"cpu_seconds_total": round(total, 3), "resident_bytes": rss,
                             "running": len(now)}])
        for key in set(self._last) - set(groups):
            for table in (self._last, self._gone, self._sent):
                table.pop(key, None)
        self.update(self.clock.seconds(), reading)


SHIPPED = (InterfacePoller, QdiscPoller, HostPoller, AgentPoller, ProcessPoller)
