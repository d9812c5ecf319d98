"""The layering holds: which way imports go between SEER's packages.

Every import of every module is read with ``ast`` -- at module level and
inside functions (SEER imports heavy or optional modules late), relative
ones resolved, ``importlib.import_module("...")`` with a literal name too --
and checked against the rules below, which are the architecture written as
data (docs/ARCHITECTURE.md draws the same picture).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The packages whose modules are checked (tests/ is not library code).
PACKAGES = ("seer", "backend", "agents", "bench")

#: (modules the rule covers, what they may not import, why)
FORBIDDEN = (
    ("seer.protocol", ("backend", "seer.client", "seer.cli", "twisted", "OpenSSL"),
     "the protocol is the bottom floor: codecs and policies that the client, the "
     "controller and the node share, light enough to load without Twisted or pyOpenSSL"),
    ("backend.node", ("backend.controller",),
     "a node daemon runs no controller code; what both need lives below them"),
    ("backend.controller", ("backend.node",),
     "the controller runs no node code; what both need lives below them"),
    (("backend", "agents", "seer.protocol", "seer.client"), ("matplotlib", "seer.report"),
     "plots are drawn on the experimenter's machine by `seer report` alone: the daemon, "
     "the controller, agents and the client's other parts never load matplotlib "
     "(setup.cfg's report extra; a node installs SEER without it)"),
)

GLOBAL_REACTOR = "twisted.internet.reactor"


def cli_service_runner() -> str:
    # The service runner moved out of seer/cli/__init__.py into its own module.
    return "seer.cli.services" if (ROOT / "seer/cli/services.py").exists() else "seer.cli"


#: Modules that may import the global reactor: the programs' entry points.
#: Library code takes the reactor (or a clock) as an argument.
REACTOR_ENTRY_POINTS = (
    cli_service_runner(),                  # seer controller / seer daemon
    "backend.tap",                         # builds the services from settings
    # SEER's documented Controller(multicastaddr, name, cafile, nodefile,
    # required) has no reactor: the global one is its default, in __init__ only.
    "backend.controller.service",
    "backend.runtime.trafficcontroller",   # its own process: python -m ...trafficcontroller
    "backend.runtime.worker",              # an agent worker: python -m backend.runtime.worker
    "seer.localrun",                       # a local experiment's processes
    "seer.testbed.relay",                  # the site relay process
    "agents.tools",                        # the tool servers agents start
    "bench",                               # benchmark programs
    "tests",                               # not library code
)


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    statement: str  # the import as written
    imported: str   # the module it reaches that the rule forbids
    why: str

    def __str__(self) -> str:
        return f"{self.module} (line {self.line}) `{self.statement}` imports {self.imported}: {self.why}"


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(module: str, source: str, is_package: bool = False) -> list[tuple[int, str, list[str]]]:
    """(line, statement, dotted names) of every import in ``source``, wherever it is.

    ``from a.b import c`` reaches ``a.b`` and ``a.b.c`` (c may be a module).
    """
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) == "import_module"
                   or getattr(node.func, "id", None) in ("import_module", "__import__"))):
            names = [node.args[0].value]
        else:
            continue
        found.append((node.lineno, ast.unparse(node), names))
    return found


def _many(covered: str | tuple[str, ...]) -> tuple[str, ...]:
    """A rule covers one package or several."""
    return (covered,) if isinstance(covered, str) else covered


def check_source(module: str, source: str, is_package: bool = False) -> list[Violation]:
    """The rules broken by one module's source: one violation per import and rule."""
    problems = []
    for line, statement, names in imports(module, source, is_package):
        for covered, banned, why in FORBIDDEN:
            if not any(within(module, c) for c in _many(covered)):
                continue
            hits = [n for n in names for prefix in banned if within(n, prefix)]
            if hits:
                problems.append(Violation(module, line, statement, min(hits, key=len), why))
        reactor = [n for n in names if within(n, GLOBAL_REACTOR)]
        if reactor and not any(within(module, entry) for entry in REACTOR_ENTRY_POINTS):
            problems.append(Violation(
                module, line, statement, reactor[0],
                "only a program's entry point uses the global reactor; library code is "
                "given the reactor or a clock"))
    return problems


def check_tree(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> list[Violation]:
    problems = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if ".venv" in path.parts or "__pycache__" in path.parts:
                continue
            problems += check_source(module_name(path, root), path.read_text(),
                                     path.name == "__init__.py")
    return problems


# -- the tree as it is -----------------------------------------------------------------


def test_the_tree_keeps_its_layers():
    problems = check_tree()
    assert problems == [], "\n".join(map(str, problems))


def test_the_checker_reads_the_whole_tree():
    # A checker that found no files would pass everything.
    modules = {module_name(p) for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    assert {"seer.protocol.wire", "backend.node.daemon", "backend.controller",
            "backend.tap"} <= modules
    assert any("twisted.internet.reactor" in names
               for _, _, names in imports("seer.testbed.relay",
                                          (ROOT / "seer/testbed/relay.py").read_text()))


# -- it can fail: planted bad imports ------------------------------------------------------


@pytest.mark.parametrize("module, source, imported", [
    ("seer.protocol.planted", "from backend.node import daemon\n", "backend.node"),
    ("seer.protocol.planted", "def late():\n    import seer.client.experiment\n",
     "seer.client.experiment"),
    ("seer.protocol.planted", "from twisted.internet.defer import Deferred\n",
     "twisted.internet.defer"),
    ("seer.protocol.planted", "import OpenSSL.SSL\n", "OpenSSL.SSL"),
    ("seer.protocol.planted", "from seer import cli\n", "seer.cli"),
    ("backend.node.planted", "from backend.controller.comm import CommWrapper\n",
     "backend.controller.comm"),
    ("backend.node.planted", "from ..controller import Controller\n", "backend.controller"),
    ("backend.controller.planted", "import importlib\n"
     "importlib.import_module('backend.node.daemon')\n", "backend.node.daemon"),
    ("backend.runtime.planted", "from twisted.internet import reactor\n",
     "twisted.internet.reactor"),
    ("seer.client.planted", "def f():\n    import twisted.internet.reactor\n",
     "twisted.internet.reactor"),
    ("backend.node.planted", "def plot():\n    import matplotlib.pyplot as plt\n",
     "matplotlib.pyplot"),
    ("backend.controller.planted", "from matplotlib.figure import Figure\n",
     "matplotlib.figure"),
    ("agents.planted", "from seer.report import plots\n", "seer.report"),
    ("seer.client.planted", "import matplotlib\n", "matplotlib"),
])
def test_a_planted_bad_import_fails_naming_the_module_and_the_import(module, source, imported):
    problems = check_source(module, source)
    assert problems, f"{module} importing {imported} was not caught"
    assert any(p.imported == imported and p.module == module for p in problems), problems
    message = str(problems[0])
    assert message.startswith(f"{module} (line ") and imported in message


def test_a_planted_module_on_disk_fails_the_tree_check(tmp_path):
    (tmp_path / "seer/protocol").mkdir(parents=True)
    (tmp_path / "seer/__init__.py").write_text("")
    (tmp_path / "seer/protocol/__init__.py").write_text("from . import planted\n")
    (tmp_path / "seer/protocol/planted.py").write_text(
        '"""A protocol module that reaches up."""\n\n'
        "def helper():\n"
        "    from backend.controller import service\n"
        "    return service\n")
    (problem,) = check_tree(tmp_path, ("seer",))
    assert str(problem).startswith("seer.protocol.planted (line 4) "
                                   "`from backend.controller import service` imports "
                                   "backend.controller: the protocol is the bottom floor")


@pytest.mark.parametrize("module, source", [
    ("backend.tap", "from twisted.internet import reactor\n"),
    ("agents.tools.cbr", "def main():\n    from twisted.internet import reactor\n"),
    ("tests.test_x", "from twisted.internet import reactor\n"),
    ("backend.node.daemon", "from backend.agent import Agent\nfrom seer.protocol import wire\n"),
    ("seer.protocol.wire", "import json\nfrom seer.protocol.messages import RUN_COMMANDS\n"),
    ("seer.protocol.datagrams", "from cryptography.hazmat.primitives import hashes\n"),
    ("backend.controller.service", "from twisted.internet.interfaces import IReactorTime\n"),
    ("seer.report.plots", "import matplotlib\nfrom matplotlib.figure import Figure\n"),
    ("seer.cli.report", "def f():\n    from seer.report import build\n"),
])
def test_allowed_imports_pass(module, source):
    assert check_source(module, source) == []


def reached(module: str, source: str, is_package: bool = False) -> set[str]:
    return {n for _, _, names in imports(module, source, is_package) for n in names}


def test_relative_imports_are_resolved_from_the_module_or_its_package():
    assert "backend.controller.c" in reached("backend.node.daemon", "from ..controller import c")
    assert "backend.node.serializer" in reached("backend.node", "from . import serializer", True)
    assert "backend.node.serializer" in reached("backend.node.daemon", "from .serializer import S")
