"""End to end: agents over the real control plane, real processes, real traffic."""

from __future__ import annotations

import os
import re
import socket
from collections import Counter

import pytest

from e2e import eventually, lab_for
from procfs import tagged, zombies
from seer import client as seer_client
from seer.client import CommandFailed, RequestRefused

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent_tag(lab, node: str, agent: str, group: str) -> str:
    return f"{node}/{lab.daemons[node].pid}/{agent}/{group}"


def no_leftovers(lab, agent: str, group: str) -> None:
    for node, proc in lab.daemons.items():
        tag = agent_tag(lab, node, agent, group)
        assert eventually(lambda: tagged(tag), lambda pids: pids == [], timeout=5,
                          interval=0.1) == [], node
        assert zombies(proc.pid) == [], node


def served_sizes(lab, group: str) -> list[bytes]:
    log = lab.workdir / f"nodes/n1/HTTPLIKE-{group}/agent.log"  # written from its first line
    return re.findall(rb"served /(\d+) ", log.read_bytes()) if log.exists() else []


def client_logs(lab, group: str, nodes) -> dict[str, bytes]:
    logs = {}
    for n in nodes:
        path = lab.workdir / f"nodes/{n}/HTTPLIKE-{group}/clients.log"
        logs[n] = path.read_bytes() if path.exists() else b""
    return logs


@pytest.fixture(scope="module")
def lab4(tmp_path_factory, certs_dir):
    lab = lab_for(tmp_path_factory.mktemp("agents"), certs_dir, 4)
    with lab:
        yield lab


def test_a_seer_style_session_runs_real_servers_and_clients(lab4, monkeypatch):
    for key, value in lab4.env().items():
        if key.startswith("SEER_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setattr(seer_client, "_default_experiment", None)
    port = free_port()
    a = seer_client.Agent("HTTPLIKE", "web1")
    result = a.Set(NODES="n1 n2 n3 n4", servers="n1", clients="n2 n3 n4",
                   think="minmax(0.1,0.9)", sizes="pareto(1.4,5000,200000)", port=port)
    assert result.ok and len(result.outcomes) == 4
    started = a.Start()
    assert started.outcomes["n1"].result == {"server": True, "clients": False}
    clients = ("n2", "n3", "n4")
    for n in clients:
        assert started.outcomes[n].result["clients"] is True
    # Until the server has answered six requests and every client node has
    # seen one of its fetches through.
    eventually(lambda: (served_sizes(lab4, "web1"), client_logs(lab4, "web1", clients)),
               lambda seen: len(seen[0]) >= 6
               and all(b"ended: exit code 0" in log for log in seen[1].values()),
               timeout=30)
    stopped = a.Stop()
    assert stopped.ok
    seer_client._default_experiment.close()

    fetched = []
    for n, log in client_logs(lab4, "web1", clients).items():
        # Only fetches whose curl ended well: one the Stop cut short (the
        # server killed mid-body) prints the partial size it got.
        whole = set(re.findall(rb"\[curl (\d+)\] ended: exit code 0", log))
        fetched += [int(size) for pid, size in re.findall(rb"\[curl (\d+) out\] (\d+)", log)
                    if pid in whole]
        assert whole, n
    assert fetched and all(5000 <= size <= 200000 for size in fetched)

    # Every size a client fetched, the server served and logged.  Its last
    # lines may reach agent.log after the Stop's outcome (the process that
    # reads the server's output also answers the STOP, in whichever order
    # the two came): wait for them rather than read once.
    def not_served() -> Counter:
        return Counter(fetched) - Counter(int(s) for s in served_sizes(lab4, "web1"))

    missing = eventually(not_served, lambda left: not left, timeout=10, interval=0.1)
    served = served_sizes(lab4, "web1")
    assert not missing, (missing, served)
    assert len(served) >= 6, "the server answered too few requests"
    no_leftovers(lab4, "HTTPLIKE", "web1")


def test_a_bad_variable_is_refused_and_nothing_changes(lab4):
    port = free_port()
    with lab4.experiment() as exp:
        web = exp.agent("HTTPLIKE", "web2")
        web.set(servers="n1", clients="n2", port=port, think="expo(1)")
        for bad, message in ((dict(think="minmax(0.9,0.1)"), "think: 'minmax(0.9,0.1)': lower bound"),
                             (dict(port=70000), "port: 70000 is above the maximum 65535"),
                             (dict(colour="red"), "HTTPLIKE has no variable 'colour'")):
            with pytest.raises(RequestRefused, match=re.escape(message)):
                web.set(**bad)
        # A value only the node can judge: its port is taken there.
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            taken = busy.getsockname()[1]
            with pytest.raises(CommandFailed) as e:
                web.set(port=taken, think="expo(2)")
        outcomes = e.value.result.outcomes
        assert outcomes["n1"].status == "failed"
        assert f"port: {taken} is not free on n1" in outcomes["n1"].error
        assert all(outcomes[n].status == "applied" for n in ("n2", "n3", "n4"))
        values = web.command("VARS", target="n1").outcomes["n1"].result
        assert values["port"] == port and values["think"] == "expo(1)"  # all of it refused on n1


def test_runtime_launches_clients_fast_and_reports_the_rate(lab4):
    with lab4.experiment() as exp:
        exp.subscribe()
        launcher = exp.agent("LAUNCHER", "rate")
        launcher.set(servers="n1", clients="n2", think="constant(0)", count=300, max_clients=50)
        launcher.start(target="n2")
        done = exp.wait_for_event("clients_done", nodes=["n2"], group="rate", timeout=60)
        launcher.stop(target="n2")
    data = done["n2"].get("data")
    print(f"client launches: {data['launched']} in {data['elapsed']} s = "
          f"{data['launch_rate']} launches/s (all exited 0: {data['exited_ok']})")
    assert data["launched"] == 300 and data["exited_ok"] == 300
    no_leftovers(lab4, "LAUNCHER", "rate")


def test_an_agent_module_put_at_run_time_is_used_without_restarting(lab4, tmp_path):
    module = tmp_path / "greeter.py"
    module.write_text(
        "from backend.agent import Agent, Var\n\n"
        "class Greeter(Agent):\n"
        "    '''Greets.'''\n"
        "    AGENT_TYPE = 'GREETER'\n"
        "    VARIABLES = [Var('who', 'string', 'world', 'whom to greet')]\n\n"
        "    def handleGREET(self):\n"
        "        return {'greeting': 'hello ' + self.getNodeVar('who')}\n")
    pids = {n: p.pid for n, p in lab4.daemons.items()}
    with lab4.experiment() as exp:
        put = exp.put_agent(module)
        assert put.ok and put.outcomes["n1"].result["agents"] == ["GREETER"]
        greeter = exp.agent("GREETER", "g")
        greeter.set(who="SEER")
        result = greeter.command("GREET")
    assert {o.result["greeting"] for o in result.outcomes.values()} == {"hello SEER"}
    assert {n: p.pid for n, p in lab4.daemons.items()} == pids
    assert "GREETER -- Greets." in lab4.cli("agents").stdout


def test_a_broken_module_put_fails_per_node_with_its_error(lab4, tmp_path):
    module = tmp_path / "broken.py"
    module.write_text("import nonexistent_module_for_seer\n")
    with lab4.experiment() as exp:
        result = exp.put_agent(module, check=False)
    assert {o.status for o in result.outcomes.values()} == {"failed"}
    assert "No module named 'nonexistent_module_for_seer'" in result.outcomes["n2"].error
    with lab4.experiment() as exp:
        still = exp.agent("NOOP", "still")
        still.set(note="fine")
        assert still.command("ECHO").ok  # daemons fine


def test_get_brings_a_file_back_from_every_node(lab4, tmp_path):
    with lab4.experiment() as exp:
        exp.put(b"payload " * 100_000, "big/blob.bin")
        result = exp.get("files/big/blob.bin", into=tmp_path)
    for node, outcome in result.outcomes.items():
        path = tmp_path / node / "files/big/blob.bin"
        assert path.read_bytes() == b"payload " * 100_000
        assert outcome.result["size"] == 800_000 and outcome.result["path"] == str(path)
    run = lab4.cli("get", "no/such/file", "--into", str(tmp_path))
    assert run.returncode == 1 and "no such file" in run.stdout


def test_daemon_shutdown_leaves_no_process_behind(tmp_path, certs_dir):
    lab = lab_for(tmp_path, certs_dir, 2)
    port = free_port()
    with lab:
        with lab.experiment() as exp:
            web = exp.agent("HTTPLIKE", "w")
            web.set(servers="n1", clients="n2", think="constant(0.05)", port=port)
            web.start()
        tags = {n: f"{n}/{p.pid}/" for n, p in lab.daemons.items()}
        pids = {n: p.pid for n, p in lab.daemons.items()}
        # The server on n1, the traffic controller and its clients on n2.
        running = eventually(lambda: {n: tagged(tag) for n, tag in tags.items()},
                             lambda found: all(found.values()), timeout=15, interval=0.1)
        assert running["n1"] and running["n2"], running
    codes = lab.stop()
    assert codes["n1"] == 0 and codes["n2"] == 0
    left = eventually(
        lambda: {n: (tagged(tag), os.path.exists(f"/proc/{pids[n]}")) for n, tag in tags.items()},
        lambda found: all(not procs and not alive for procs, alive in found.values()),
        timeout=5, interval=0.1)
    for node, (procs, daemon_alive) in left.items():
        assert procs == [], node
        assert not daemon_alive, node
