"""Plug-in classes from folders and entry points: third-party pollers and aggregators.

The same rules as agents (:mod:`backend.runtime.agentloader`): every
``*.py`` of a folder (but ``_*.py``) is imported, and every subclass of the
wanted base defined there with a ``NAME`` is taken; then the classes of an
entry-point group (``seer.pollers``, ``seer.aggregators``).  A module that
fails to import, or a class that is not a proper subclass, is recorded with
the reason and logged -- the others load as usual; a bad plug-in never
stops the daemon or the controller.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

from twisted.logger import Logger

log = Logger()

T = TypeVar("T")


@dataclass(frozen=True)
class PluginError:
    source: str
    error: str

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "error": self.error}


class PluginSet(Generic[T]):
    """Classes of ``base`` by their ``NAME``; later loads replace earlier ones."""

    def __init__(self, base: type[T], what: str) -> None:
        self.base = base
        self.what = what
        self.classes: dict[str, type[T]] = {}
        self.sources: dict[str, str] = {}
        self.errors: list[PluginError] = []

    def add(self, cls: Any, source: str) -> bool:
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            return self._error(source, f"{cls!r} is not a subclass of {self.base.__name__}")
        name = getattr(cls, "NAME", "")
        if not isinstance(name, str) or not name.isidentifier():
            return self._error(source, f"{cls.__name__}.NAME must be an identifier, "
                                       f"not {name!r}")
        self.classes[name] = cls
        self.sources[name] = source
        return True

    def load_directory(self, directory: Path | str) -> list[str]:
        directory = Path(directory)
        if not directory.is_dir():
            self._error(str(directory), f"{self.what} directory does not exist")
            return []
        loaded: list[str] = []
        for path in sorted(directory.glob("*.py")):
            if not path.name.startswith("_"):
                loaded += self._load_file(path)
        return loaded

    def _load_file(self, path: Path) -> list[str]:
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
        module_name = f"seer_{self.what}_{path.stem}_{digest}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # even sys.exit() in a plug-in must not stop the service
            sys.modules.pop(module_name, None)
            self._error(str(path), _short(e))
            return []
        loaded = []
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, self.base)
                    and value.__module__ == module_name and getattr(value, "NAME", "")):
                if self.add(value, str(path)):
                    loaded.append(value.NAME)
        return loaded

    def load_entry_points(self, group: str) -> list[str]:
        loaded = []
        for ep in entry_points(group=group):
            source = f"entry point {ep.name} = {ep.value}"
            try:
                cls = ep.load()
            except Exception as e:
                self._error(source, _short(e))
                continue
            if self.add(cls, source):
                loaded.append(cls.NAME)
        return loaded

    def _error(self, source: str, error: str) -> bool:
        self.errors.append(PluginError(source, error))
        log.error("could not load {what} from {source}: {error}", what=self.what,
                  source=source, error=error)
        return False


def _short(e: BaseException) -> str:
    frames = traceback.extract_tb(e.__traceback__)[-1:]
    where = f" ({frames[0].filename}:{frames[0].lineno})" if frames else ""
    return f"{type(e).__name__}: {e}{where}"
