"""Loading agents from directories and entry points; broken modules reported."""

from __future__ import annotations


from backend.agent import Agent
from backend.runtime.agentloader import SHIPPED_AGENTS, AgentRegistry, default_registry

from conftest import TEST_AGENTS


def test_shipped_agents_load():
    registry = AgentRegistry()
    assert "NOOP" in registry.load_directory(SHIPPED_AGENTS)
    assert registry.errors == []


def test_a_broken_module_is_reported_and_the_others_still_load():
    registry = AgentRegistry()
    loaded = registry.load_directory(TEST_AGENTS)
    assert "RECORDER" in loaded
    (error,) = registry.errors
    assert error.source.endswith("broken_import.py")
    assert "ImportError: this agent module is broken on purpose" in error.error


def test_a_module_calling_exit_does_not_stop_the_loader(tmp_path):
    (tmp_path / "quits.py").write_text("import sys\nsys.exit(3)\n")
    registry = AgentRegistry()
    assert registry.load_directory(tmp_path) == []
    assert "SystemExit" in registry.errors[0].error


def test_bad_agent_classes_are_refused_with_the_reason(tmp_path):
    (tmp_path / "bad.py").write_text(
        "from backend.agent import Agent, Var\n"
        "class WrongMenu(Agent):\n    AGENT_TYPE = 'W'\n    MENU = 'Toys'\n"
    )
    registry = AgentRegistry()
    registry.load_directory(tmp_path)
    assert "WrongMenu.MENU is 'Toys'" in registry.errors[0].error


def test_missing_directory_is_reported(tmp_path):
    registry = default_registry([tmp_path / "nope"])
    assert "NOOP" in registry
    assert any("does not exist" in e.error for e in registry.errors)


def test_catalogue_describes_commands_and_typed_variables():
    registry = AgentRegistry()
    registry.load_directory(TEST_AGENTS)
    entry = registry.catalogue()["RECORDER"]
    assert entry["commands"] == ["FAIL", "RECORD", "START", "STATS", "STOP", "VARS"]
    assert entry["menu"] == "Measurement"
    variables = {v["name"]: v for v in entry["variables"]}
    assert variables["count"] == {"name": "count", "type": "int", "default": 0,
                                  "help": "an integer, to test type checks"}
    assert variables["NODES"]["type"] == "nodelist"


def test_non_agent_in_entry_point_style_add_is_refused():
    registry = AgentRegistry()
    assert not registry.add(object, "entry point x")
    assert "not a subclass" in registry.errors[0].error
    assert registry.add(type("Ok", (Agent,), {"AGENT_TYPE": "OK"}), "entry point y")


def test_an_agent_whose_description_is_not_json_is_refused(tmp_path):
    (tmp_path / "inf.py").write_text(
        "from backend.agent import Agent, Var\n"
        "class Inf(Agent):\n    AGENT_TYPE = 'INF'\n"
        "    VARIABLES = [Var('rate', 'float', float('inf'))]\n"
        "class BadDefault(Agent):\n    AGENT_TYPE = 'BAD'\n"
        "    VARIABLES = [Var('n', 'int', 'many')]\n"
    )
    registry = AgentRegistry()
    assert registry.load_directory(tmp_path) == []
    errors = " ".join(e.error for e in registry.errors)
    assert "the default of rate" in errors and "the default of n" in errors
