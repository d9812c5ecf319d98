"""Parsing what the kernel says in /proc: pure functions over text.

The pollers read a few small files each interval (``/proc/net/dev``,
``/proc/stat``, ``/proc/meminfo``, ``/proc/loadavg`` and two files per
agent process); reading files of a few KB from procfs never waits on a
device, so it is done in the reactor thread.  Parsing lives here, apart,
so it is tested on text without a kernel.
"""

from __future__ import annotations

import os
from pathlib import Path

#: /proc/net/dev's columns, in order, as value names.
NET_DEV_FIELDS = ("receive_bytes_total", "receive_packets_total", "receive_errors_total",
                  "receive_drops_total", None, None, None, None,
                  "transmit_bytes_total", "transmit_packets_total", "transmit_errors_total",
                  "transmit_drops_total", None, None, None, None)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """{interface: {value name: counter}} from /proc/net/dev.

    The byte counters are what the interface sent and received including
    link-layer headers (Ethernet: 14 bytes per frame on a veth), without
    preamble or FCS.
    """
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        numbers = rest.split()
        if len(numbers) < 16:
            continue
        out[name.strip()] = {field: int(value) for field, value in zip(NET_DEV_FIELDS, numbers)
                             if field is not None}
    return out


def cpu_ticks(line: str) -> list[int]:
    """The clock ticks of a /proc/stat ``cpu`` line: user, nice, system,
    idle, iowait, irq, softirq, steal (guest time is in user)."""
    ticks = [int(v) for v in line.split()[1:9]]
    return ticks + [0] * (8 - len(ticks))


def parse_cpu(text: str) -> dict[str, float]:
    """Busy and idle CPU seconds of the whole host from /proc/stat's ``cpu`` line,
    and the number of CPUs."""
    busy = idle = 0.0
    cpus = 0
    for line in text.splitlines():
        if line.startswith("cpu "):
            ticks = cpu_ticks(line)
            idle = (ticks[3] + ticks[4]) / CLOCK_TICKS
            busy = (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]) / CLOCK_TICKS
        elif line.startswith("cpu") and line[3:4].isdigit():
            cpus += 1
    return {"cpu_busy_seconds_total": round(busy, 2), "cpu_idle_seconds_total": round(idle, 2),
            "cpus": cpus}


def parse_meminfo(text: str) -> dict[str, int]:
    """Total and available memory in bytes from /proc/meminfo."""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            values[key] = int(rest.split()[0]) * 1024
    return {"memory_total_bytes": values.get("MemTotal", 0),
            "memory_available_bytes": values.get("MemAvailable", 0)}


def parse_loadavg(text: str) -> dict[str, float]:
    one, five, fifteen = (float(v) for v in text.split()[:3])
    return {"load1": one, "load5": five, "load15": fifteen}


def parse_pid_stat(text: str) -> tuple[float, int]:
    """(CPU seconds: user + system + its waited-for children's, parent PID)
    from /proc/PID/stat."""
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = text.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS, int(fields[1])


def parse_statm_rss(text: str) -> int:
    """Resident bytes from /proc/PID/statm."""
    return int(text.split()[1]) * PAGE_SIZE


def read(path: str | Path) -> str | None:
    """A procfs file's text, or None if it is gone (a process that ended)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def process_tree(pids: list[int], proc: str = "/proc") -> list[int]:
    """``pids`` and their descendants (through each main thread's
    ``children`` file), each once."""
    seen: list[int] = []
    known: set[int] = set()
    todo = list(pids)
    while todo and len(seen) < 10_000:
        pid = todo.pop()
        if pid in known:
            continue
        known.add(pid)
        seen.append(pid)
        children = read(f"{proc}/{pid}/task/{pid}/children")
        if children:
            todo.extend(int(c) for c in children.split())
    return seen
