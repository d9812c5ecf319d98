"""Finding agent classes: agent directories and the ``seer.agents`` entry points.

A module that fails to import, or an agent class that is not a proper Agent,
is recorded in :attr:`AgentRegistry.errors` with the reason, logged, and the
rest load as usual.

The registry also says where each type runs (:meth:`AgentRegistry.isolated`):
in the daemon's own process (inline) or each group in a worker process of
its own (isolated, :mod:`backend.node.workers`).  The daemon's ``isolate``
setting decides first -- ``all`` isolates every type, ``none`` none; with
``auto`` (the default) an agent class's own ``ISOLATED`` (True or False)
decides, and without one the shipped agents (SEER's ``agents/`` folder,
known good) run inline for speed while third-party ones -- agent folders,
entry points, modules PUT at run time -- run isolated.  A class registered
in code (no module file or entry point) always runs inline: a worker could
not load it again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from twisted.logger import Logger

from backend.agent import MENUS, Agent
from seer.protocol.wire import dumps

log = Logger()

ENTRY_POINT_GROUP = "seer.agents"
SHIPPED_AGENTS = Path(__file__).resolve().parents[2] / "agents"

#: The daemon's ``isolate`` setting: where agent groups run (module docstring).
ISOLATE_MODES = ("auto", "all", "none")
#: Where a type was found: SEER's agents/ folder, another module file (an
#: agent folder, a PUT), an entry point, or code that called ``add``.
SHIPPED, FILE, ENTRY_POINT, ADDED = "shipped", "file", "entry point", "added"


def check_isolate(mode: str) -> str:
    """``mode`` if it is an ``isolate`` setting; ValueError saying the choices if not."""
    if mode not in ISOLATE_MODES:
        raise ValueError(f"isolate must be one of {', '.join(ISOLATE_MODES)}, not {mode!r}")
    return mode


@dataclass(frozen=True)
class LoadError:
    source: str
    error: str

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "error": self.error}


class AgentRegistry:
    def __init__(self) -> None:
        self.types: dict[str, type[Agent]] = {}
        self.sources: dict[str, str] = {}
        #: Where each type was found: SHIPPED, FILE, ENTRY_POINT or ADDED.
        self.origins: dict[str, str] = {}
        self.errors: list[LoadError] = []

    def __contains__(self, agent_type: str) -> bool:
        return agent_type in self.types

    def get(self, agent_type: str) -> type[Agent]:
        try:
            return self.types[agent_type]
        except KeyError:
            known = ", ".join(sorted(self.types)) or "none"
            raise KeyError(
                f"no agent of type {agent_type!r} on this node (loaded: {known})"
            ) from None

    def add(self, cls: Any, source: str, origin: str = ADDED) -> bool:
        """Register one agent class; record an error and return False if bad."""
        problem = _check_agent_class(cls)
        if problem:
            self._error(source, problem)
            return False
        previous = self.sources.get(cls.AGENT_TYPE)
        if previous and previous != source:
            log.info(
                "agent {agent_type} from {source} replaces the one from {previous}",
                agent_type=cls.AGENT_TYPE, source=source, previous=previous,
            )
        self.types[cls.AGENT_TYPE] = cls
        self.sources[cls.AGENT_TYPE] = source
        self.origins[cls.AGENT_TYPE] = origin
        return True

    def source(self, agent_type: str) -> dict[str, str] | None:
        """Where a worker loads the class again from (its own, not a base class's)."""
        return vars(self.get(agent_type)).get("__seer_source__")

    def isolated(self, agent_type: str, mode: str = "auto") -> bool:
        """Whether groups of ``agent_type`` run in worker processes (see the module docstring)."""
        if mode == "none" or self.source(agent_type) is None:
            return False
        if mode == "all":
            return True
        choice = getattr(self.types[agent_type], "ISOLATED", None)
        if choice is not None:
            return bool(choice)
        return self.origins.get(agent_type) != SHIPPED

    def load_file(self, path: Path) -> list[str]:
        """Import one module file and register its agent classes."""
        path = Path(path)
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
        module_name = f"seer_agent_{path.stem}_{digest}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # even sys.exit() in a module must not stop the daemon
            sys.modules.pop(module_name, None)
            self._error(str(path), _short_exception(e))
            return []
        origin = SHIPPED if path.resolve().is_relative_to(SHIPPED_AGENTS) else FILE
        loaded = []
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Agent)
                and value.__module__ == module_name
                and value.AGENT_TYPE
            ):
                # Where to load it again (a traffic controller process does).
                value.__seer_source__ = {"file": str(path.resolve())}
                if self.add(value, str(path), origin):
                    loaded.append(value.AGENT_TYPE)
        return loaded

    def load_directory(self, directory: Path) -> list[str]:
        directory = Path(directory)
        if not directory.is_dir():
            self._error(str(directory), "agent directory does not exist")
            return []
        loaded = []
        for path in sorted(directory.glob("*.py")):
            if not path.name.startswith("_"):
                loaded += self.load_file(path)
        return loaded

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        loaded = []
        for ep in entry_points(group=group):
            source = f"entry point {ep.name} = {ep.value}"
            try:
                cls = ep.load()
            except Exception as e:
                self._error(source, _short_exception(e))
                continue
            if self.add(cls, source, ENTRY_POINT):
                cls.__seer_source__ = {"entry_point": ep.value}
                loaded.append(cls.AGENT_TYPE)
        return loaded

    def load_source(self, source: dict[str, str], agent_type: str) -> type[Agent]:
        """Load an agent class again from its ``__seer_source__``."""
        if "file" in source:
            self.load_file(Path(source["file"]))
        elif "entry_point" in source:
            module_name, _, attribute = source["entry_point"].partition(":")
            module = importlib.import_module(module_name)
            cls = getattr(module, attribute)
            cls.__seer_source__ = dict(source)
            self.add(cls, source["entry_point"], ENTRY_POINT)
        if self.errors:
            raise ImportError(self.errors[-1].error)
        return self.get(agent_type)

    def catalogue(self) -> dict[str, dict[str, Any]]:
        return {name: cls.describe() for name, cls in sorted(self.types.items())}

    def _error(self, source: str, error: str) -> None:
        self.errors.append(LoadError(source, error))
        log.error("could not load agent from {source}: {error}", source=source, error=error)


def _check_agent_class(cls: Any) -> str | None:
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        return f"{cls!r} is not a subclass of backend.agent.Agent"
    if not isinstance(cls.AGENT_TYPE, str) or not cls.AGENT_TYPE.strip():
        return f"{cls.__name__} has no AGENT_TYPE"
    if cls.MENU not in MENUS:
        return f"{cls.__name__}.MENU is {cls.MENU!r}; use one of {', '.join(MENUS)}"
    if getattr(cls, "ISOLATED", None) not in (None, True, False):
        return f"{cls.__name__}.ISOLATED is {cls.ISOLATED!r}; use True, False or None"
    for var in cls.declared_variables().values():
        if var.default is not None:
            try:
                var.convert(var.default)
            except ValueError as e:
                return f"{cls.__name__}: the default of {e}"
    try:
        dumps(cls.describe())
    except Exception as e:  # e.g. a default of float("inf"): INFO could not carry it
        return f"{cls.__name__}: its description is not JSON ({e})"
    return None


def _short_exception(e: BaseException) -> str:
    frames = traceback.extract_tb(e.__traceback__)[-1:]
    where = f" ({frames[0].filename}:{frames[0].lineno})" if frames else ""
    return f"{type(e).__name__}: {e}{where}"


def default_registry(extra_dirs: list[Path] = ()) -> AgentRegistry:
    """Shipped agents, then entry points, then extra directories (later wins)."""
    registry = AgentRegistry()
    registry.load_directory(SHIPPED_AGENTS)
    registry.load_entry_points()
    for directory in extra_dirs:
        registry.load_directory(Path(directory))
    return registry


def markdown_variables(cls: type[Agent]) -> str:
    """An agent's own variables as the Markdown table in docs/AGENTS.md
    (NODES and the common traffic-generator ones are documented once)."""
    from backend.agent import NODES_VAR, TRAFFIC_VARIABLES

    common = [NODES_VAR, *TRAFFIC_VARIABLES]
    lines = ["| variable | type | default | meaning |", "| --- | --- | --- | --- |"]
    for var in cls.declared_variables().values():
        if any(var is c for c in common):
            continue
        default = "" if var.default in (None, "", []) else f"`{var.default}`"
        bounds = []
        if var.minimum is not None:
            bounds.append(f"≥ {var.minimum:g}")
        if var.maximum is not None:
            bounds.append(f"≤ {var.maximum:g}")
        kind = var.type + (f" ({', '.join(bounds)})" if bounds else "")
        lines.append(f"| `{var.name}` | {kind} | {default} | {var.help} |")
    return "\n".join(lines)


if __name__ == "__main__":
    registry = AgentRegistry()
    registry.load_directory(SHIPPED_AGENTS)
    for name, cls in sorted(registry.types.items()):
        print(f"### {name}\n\n{markdown_variables(cls)}\n")
