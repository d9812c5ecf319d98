"""The docs stay true: settings tables, agent examples, protocol constants."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
from twisted.internet.task import Clock

from backend.controller import retransmit
from backend.node import daemon, serializer
from backend.agent import AgentContext
from backend.runtime.agentloader import AgentRegistry
from backend.node.dispatcher import Dispatcher
from seer import config
from seer.protocol import datagrams, tags, wire
from seer.protocol.vartypes import VarError

DOCS = Path(__file__).resolve().parent.parent / "docs"


def blocks(text: str, tag: str) -> list[str]:
    return re.findall(rf"```{tag}\n(.*?)```", text, re.S)


def test_operators_guide_has_the_settings_tables_of_the_code():
    guide = (DOCS / "OPERATIONS.md").read_text()
    assert config.markdown_table(config.CONTROLLER_SETTINGS) in guide
    assert config.markdown_table(config.DAEMON_SETTINGS) in guide


def load_doc_agents(tmp_path) -> AgentRegistry:
    guide = (DOCS / "AGENTS.md").read_text()
    registry = AgentRegistry()
    for i, code in enumerate(blocks(guide, "python agent")):
        (tmp_path / f"doc_agent_{i}.py").write_text(code)
    registry.load_directory(tmp_path)
    assert registry.errors == []
    return registry


def test_agent_guide_examples_load_and_behave(tmp_path):
    registry = load_doc_agents(tmp_path)
    assert {"HELLO", "COUNTER"} <= set(registry.types)
    clock = Clock()
    outcomes, reports = [], []

    def context(agent_type, group, node):
        return AgentContext(node=node, agent_type=agent_type, group=group, reactor=clock,
                            report=lambda event, data: reports.append((node, event, data)))

    nodes = {n: Dispatcher(n, registry, lambda t, g, n=n: context(t, g, n),
                           lambda *o, n=n: outcomes.append((n,) + o[:4]), clock)
             for n in ("n1", "n2")}
    for serial, message in enumerate([
        {"type": "COMMAND", "agent": "HELLO", "group": "greeters", "command": "SAY"},
        {"type": "SET", "agent": "COUNTER", "group": "c", "vars": {"step": {"*": 5, "n2": 100}}},
        {"type": "COMMAND", "agent": "COUNTER", "group": "c", "command": "ADD", "args": {"times": 2}},
        {"type": "COMMAND", "agent": "COUNTER", "group": "c", "command": "ADD", "args": {"times": -1}},
    ], start=1):
        for d in nodes.values():
            d.dispatch(serial, dict(message, target="*"))
    assert ("n1", "said", {"text": "hello from n1"}) in reports
    assert ("n1", 3, "applied", None, {"total": 10}) in outcomes
    assert ("n2", 3, "applied", None, {"total": 200}) in outcomes
    failed = [o for o in outcomes if o[1] == 4]
    assert all(o[2] == "failed" and "ValueError: times must not be negative" in o[3]
               for o in failed)


def test_agent_guide_testing_example_runs_as_written(tmp_path, monkeypatch):
    # The guide's test module, run as an author would: its agent in counter.py
    # on the path, every test_ function called.  Nothing is handed to it.
    guide = (DOCS / "AGENTS.md").read_text()
    (counter,) = [code for code in blocks(guide, "python agent") if "class Counter(" in code]
    (tmp_path / "counter.py").write_text(counter)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "counter", raising=False)
    (test_code,) = blocks(guide, "python test")
    namespace: dict = {"__name__": "test_agents_md"}
    exec(compile(test_code, "AGENTS.md", "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert len(tests) >= 3, "the guide's testing example lost its tests"
    for test in tests:
        test()


def test_agent_guide_code_imports_only_what_agent_authors_are_given():
    # backend.agent and seer.testing are the agent author's API (and
    # seer.client for experiment scripts); every other SEER module may move.
    allowed = {"backend.agent", "seer.testing", "seer.client"}
    guide = (DOCS / "AGENTS.md").read_text()
    code = [c for tag in ("python agent", "python test", "python session", "python example")
            for c in blocks(guide, tag)]
    assert code
    used = set()
    for snippet in code:
        for node in ast.walk(ast.parse(snippet)):
            if isinstance(node, ast.ImportFrom) and node.module:
                used.add(node.module)
            elif isinstance(node, ast.Import):
                used.update(alias.name for alias in node.names)
    internal = {m for m in used if m.split(".")[0] in ("backend", "seer", "agents")} - allowed
    assert internal == set(), f"docs/AGENTS.md imports SEER internals: {sorted(internal)}"
    assert {"backend.agent", "seer.testing"} <= used


def test_backend_agent_exports_what_an_agent_needs():
    import backend.agent

    needed = {"Agent", "TrafficAgent", "Var", "VarError", "AddressPool", "ProcessFailed",
              "TargetRefused"}
    assert needed <= set(backend.agent.__all__)
    assert all(getattr(backend.agent, name, None) is not None for name in needed)


def test_agent_guide_validate_example_refuses_per_node(tmp_path):
    registry = load_doc_agents(tmp_path)
    disk = registry.types["DISK"]()
    disk.attach(AgentContext(node="n1", agent_type="DISK", group="d", reactor=Clock()))
    disk.processArgs({"path": str(tmp_path)})
    try:
        disk.processArgs({"path": {"*": str(tmp_path), "n1": "/nonexistent/x"}})
    except VarError as e:
        assert "path: /nonexistent/x is not a folder on n1" in str(e)
    else:
        raise AssertionError("expected VarError")
    assert disk.getNodeVar("path") == str(tmp_path)


@pytest.mark.e2e
def test_agent_guide_traffic_generator_session_runs_for_real(tmp_path, monkeypatch):
    from seer import client
    from seer.localrun import LocalExperiment

    guide = (DOCS / "AGENTS.md").read_text()
    agents = tmp_path / "agents"
    agents.mkdir()
    port = _free_port()
    for i, code in enumerate(blocks(guide, "python agent")):
        # The example's default port may be taken on this machine: use a free one.
        (agents / f"doc_agent_{i}.py").write_text(code.replace("8000", str(port)))
    lab = LocalExperiment(tmp_path / "lab", ["server1", "client1", "client2"],
                          common_daemon_args=["--agent-dirs", str(agents)])
    with lab:
        for key, value in lab.env().items():
            if key.startswith("SEER_"):
                monkeypatch.setenv(key, value)
        monkeypatch.setattr(client, "_default_experiment", None)
        (session,) = blocks(guide, "python session")
        exec(compile(session, "AGENTS.md", "exec"), {})
        client._default_experiment.close()
    log = (lab.workdir / "nodes/server1/WEBFETCH-web1/agent.log").read_text()
    assert log.count('"GET / HTTP/1.1" 200') >= 5
    for node in ("client1", "client2"):
        clients = (lab.workdir / f"nodes/{node}/WEBFETCH-web1/clients.log").read_text()
        assert "[curl" in clients and "ended: exit code 0" in clients


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_protocol_document_states_the_codes_limits():
    protocol = " ".join((DOCS / "PROTOCOL.md").read_text().split())
    assert f"at most {datagrams.MAX_DATAGRAM:,} bytes" in protocol
    assert f"length ≥ {datagrams.DATAGRAM_OVERHEAD}" in protocol
    assert f"length ≥ {datagrams.MIN_DATAGRAM} (header + slots + mac)" in protocol
    assert f"at most {tags.TAG_LIMIT} nodes" in protocol
    assert f"the first {tags.TAG_LEN} bytes of HMAC-SHA256" in protocol
    assert "≤ 16 MiB" in protocol and wire.MAX_FRAME == 16 * 1024 * 1024
    assert f"more than {retransmit.MAX_REPAIR:,} are wanted" in protocol
    assert f"at most {daemon.MAX_NACK_RANGES:,} ranges" in protocol
    assert f"again after {serializer.Serializer().base_retry} s" in protocol
    assert f"version {wire.PROTOCOL_VERSION}" in protocol


def test_agent_guide_lists_every_shipped_agent_with_its_variables_as_in_the_code():
    from backend.runtime.agentloader import SHIPPED_AGENTS, AgentRegistry, markdown_variables

    guide = (DOCS / "AGENTS.md").read_text()
    registry = AgentRegistry()
    registry.load_directory(SHIPPED_AGENTS)
    for name, cls in registry.types.items():
        if name == "NOOP":
            continue
        assert f"### {name}\n" in guide, f"{name} is not documented"
        assert markdown_variables(cls) in guide, f"{name}'s variable table is out of date"


def test_agent_guide_examples_set_only_variables_the_agents_have():

    from backend.runtime.agentloader import default_registry

    registry = default_registry()
    options = {"target", "timeout", "at", "after", "check"}
    guide = (DOCS / "AGENTS.md").read_text()
    for code in blocks(guide, "python example") + blocks(guide, "python session"):
        tree = ast.parse(code)
        groups = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                    getattr(node.value.func, "attr", "") in ("agent", "Agent") or \
                    isinstance(node, ast.Assign) and getattr(node.value, "func", None) is not None \
                    and getattr(node.value.func, "id", "") == "Agent":
                groups[node.targets[0].id] = node.value.args[0].value
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("set", "Set"):
                agent_type = groups.get(getattr(node.func.value, "id", ""))
                if agent_type is None or agent_type not in registry.types:
                    continue
                declared = registry.types[agent_type].declared_variables()
                for keyword in node.keywords:
                    assert keyword.arg in declared or keyword.arg in options, \
                        f"{agent_type} has no variable {keyword.arg!r} (AGENTS.md example)"


def test_experiments_guide_code_parses_and_sets_only_real_variables():

    from backend.runtime.agentloader import default_registry

    guide = (DOCS / "EXPERIMENTS.md").read_text()
    registry = default_registry()
    options = {"target", "timeout", "at", "after", "check"}
    snippets = blocks(guide, "python")
    assert snippets
    for code in snippets:
        tree = ast.parse(code)
        groups = {node.targets[0].id: node.value.args[0].value for node in ast.walk(tree)
                  if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                  and getattr(node.value.func, "attr", "") == "agent"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "set":
                agent_type = groups.get(getattr(node.func.value, "id", ""))
                if agent_type in registry.types:
                    declared = registry.types[agent_type].declared_variables()
                    for keyword in node.keywords:
                        assert keyword.arg in declared or keyword.arg in options, \
                            f"{agent_type} has no variable {keyword.arg!r} (EXPERIMENTS.md)"


def test_protocol_document_states_how_often_a_daemon_sends_its_counters():
    from backend.node import reporter

    protocol = " ".join((DOCS / "PROTOCOL.md").read_text().split())
    assert f"at most every {reporter.STATS_INTERVAL:g} s" in protocol
    assert f"at least every {reporter.STATS_REFRESH:g} s" in protocol
