"""The tests themselves: assertions that can fail, no shared state, no fixed sleeps.

Read with ``ast`` over every module in tests/:

* a comparison whose result is thrown away (``await d is x`` on its own
  line asserts nothing) and an ``assert`` of a tuple or a constant (always
  true) are mistakes;
* a test module imports fixtures and helpers from conftest.py, e2e.py or
  procfs.py, never from another test module;
* a class in a test module keeps no mutable state in class attributes
  (lists, dicts, sets), which every test would share;
* a unit test never sleeps: timers run on a ``task.Clock``.  End-to-end
  tests (marked ``e2e``) wait for events with ``e2e.eventually``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

#: Known, owned by work under way elsewhere: (file, what) -> why it is still here.
KNOWN = {
    ("test_comm.py", "imports test_controller"): "the lab fixture belongs in conftest.py",
    ("test_e2e_shipped_agents.py", "imports test_topology"):
        "EXAMPLES is conftest.EXAMPLE_TOPOLOGIES",
    ("test_daemon.py", "Tally.seen"): "a per-test recorder instead of a class list",
}


def modules() -> list[Path]:
    return sorted(p for p in TESTS.glob("test_*.py"))


def is_e2e(node: ast.AST) -> bool:
    return "mark.e2e" in ast.unparse(node)


def problems_in(path: Path) -> list[tuple[str, str]]:
    """(what, where) for each mistake in one test module."""
    tree = ast.parse(path.read_text())
    found = []
    test_names = {p.stem for p in modules()}
    module_e2e = any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "pytestmark"
                                                       for t in n.targets) and is_e2e(n.value)
                     for n in tree.body)
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Expr):
            value = node.value.value if isinstance(node.value, ast.Await) else node.value
            if isinstance(value, ast.Compare):
                found.append((f"compares and drops the result: {ast.unparse(node)}", where))
        if isinstance(node, ast.Assert) and isinstance(node.test, (ast.Tuple, ast.Constant)):
            found.append((f"asserts something always true: {ast.unparse(node)}", where))
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            found += [(f"imports {name}", where) for name in names if name in test_names]
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                target = item.target if isinstance(item, ast.AnnAssign) else (
                    item.targets[0] if isinstance(item, ast.Assign) else None)
                value = getattr(item, "value", None)
                if target is not None and isinstance(value, (ast.List, ast.Dict, ast.Set)) \
                        and not getattr(target, "id", "").isupper():
                    found.append((f"{node.name}.{target.id}", where))
    if not module_e2e:
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) or \
                    any(is_e2e(d) for d in function.decorator_list):
                continue
            for call in ast.walk(function):
                if isinstance(call, ast.Call) and ast.unparse(call.func) in ("time.sleep", "sleep"):
                    found.append((f"a unit test sleeps: {ast.unparse(call)}",
                                  f"{path.name}:{call.lineno}"))
    return found


def test_every_test_module_is_read():
    names = {p.name for p in modules()}
    assert {"test_wire.py", "test_processes.py", "test_hygiene.py"} <= names


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.name)
def test_the_test_module_can_fail_for_the_right_reason(path):
    problems = [f"{where}: {what}" for what, where in problems_in(path)
                if (path.name, what) not in KNOWN]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("source, expected", [
    ("async def test_x(d):\n    await d is None\n", "compares and drops the result"),
    ("def test_x(a):\n    a == 1\n", "compares and drops the result"),
    ("def test_x(a):\n    assert (a == 1, 'a is 1')\n", "asserts something always true"),
    ("from test_wire import KEYS\n", "imports test_wire"),
    ("class Agent:\n    seen: list = []\n", "Agent.seen"),
    ("import time\n\ndef test_x():\n    time.sleep(1)\n", "a unit test sleeps"),
])
def test_a_planted_mistake_is_found(tmp_path, source, expected):
    planted = tmp_path / "test_planted.py"
    planted.write_text(source)
    found = [what for what, _ in problems_in(planted)]
    assert any(expected in what for what in found), found


@pytest.mark.parametrize("source", [
    "async def test_x(d):\n    assert (await d) is None\n",
    "import pytest\n\n@pytest.mark.e2e\ndef test_x():\n    import time\n    time.sleep(1)\n",
    "class Agent:\n    VARIABLES = []\n    AGENT_TYPE = 'A'\n",
    "from conftest import TEST_AGENTS\nfrom e2e import eventually\n",
])
def test_what_is_right_passes(tmp_path, source):
    planted = tmp_path / "test_planted.py"
    planted.write_text(source)
    assert problems_in(planted) == []
