"""The dashboard's files: shipped, recorded, loading nothing from elsewhere.

The vendored libraries are the versions VENDORED.md records, each beside
its license; everything the page loads is in static/ and is served from
the controller (no URL of another host anywhere in the page or in SEER's
own scripts); every static file is package data, so an installed SEER has
them; SEER's JavaScript is one view per file; the dashboard's Python
modules keep to 500 lines and say their job.
"""

from __future__ import annotations

import ast
import configparser
import fnmatch
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "backend" / "controller" / "dashboard"
STATIC = PACKAGE / "static"
VENDOR = STATIC / "vendor"


def vendored() -> list[tuple[str, str, list[str]]]:
    """(library, version, files) from VENDORED.md's table."""
    rows = []
    for line in (VENDOR / "VENDORED.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"\d+\.\d+\.\d+", cells[1]):
            library = re.sub(r"\[(\w+)\].*", r"\1", cells[0]).lower()
            rows.append((library, cells[1], re.findall(r"`([^`]+)`", cells[2])))
    return rows


def test_vendored_md_records_both_libraries():
    assert [(library, files) for library, _, files in vendored()] == [
        ("cytoscape", ["cytoscape.min.js"]), ("uplot", ["uPlot.iife.min.js", "uPlot.min.css"])]


@pytest.mark.parametrize("library, version, files", vendored())
def test_each_vendored_file_is_there_with_its_license_and_recorded_version(
        library, version, files):
    folder = VENDOR / library
    assert "MIT" in (folder / "LICENSE").read_text() or \
        "Permission is hereby granted" in (folder / "LICENSE").read_text()
    for name in files:
        assert (folder / name).stat().st_size > 1000, name
    script = next(name for name in files if name.endswith(".js"))
    head = (folder / script).read_text()
    assert f'version="{version}"' in head or f"(v{version})" in head[:200]


def page_references() -> list[str]:
    html = (STATIC / "index.html").read_text()
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_everything_the_page_loads_is_shipped_beside_it():
    references = page_references()
    assert "static/js/app.js" in references
    for reference in references:
        if reference.startswith("data:"):
            continue
        assert not re.match(r"^[a-z]+:|^//", reference), f"the page loads {reference} from elsewhere"
        assert (PACKAGE / reference).is_file(), reference


def scripts() -> list[Path]:
    return sorted((STATIC / "js").glob("*.js"))


def test_seers_scripts_import_only_each_other_and_name_no_other_host():
    names = {p.name for p in scripts()}
    for path in scripts():
        text = path.read_text()
        for imported in re.findall(r'from "\./([^"]+)"|import "\./([^"]+)"', text):
            assert "".join(imported) in names, (path.name, imported)
        assert not re.search(r"https?://", text), f"{path.name} names a URL"


def test_one_view_per_file_and_each_file_says_what_it_is():
    names = {p.name for p in scripts()}
    assert {"graph.js", "nodepanel.js", "linkplot.js", "eventlog.js", "connection.js",
            "app.js"} <= names
    for path in scripts():
        lines = path.read_text().splitlines()
        assert lines[0].startswith("// "), f"{path.name} starts without saying what it is"
        assert len(lines) <= 250, f"{path.name} has {len(lines)} lines"
        classes = re.findall(r"^export class (\w+)", path.read_text(), re.M)
        assert len(classes) <= 1, f"{path.name} has several views: {classes}"


def test_every_static_file_is_package_data():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = [p.strip() for p in
                config["options.package_data"]["backend.controller.dashboard"].splitlines()
                if p.strip()]
    for path in sorted(p for p in STATIC.rglob("*") if p.is_file()):
        relative = str(path.relative_to(PACKAGE))
        assert any(fnmatch.fnmatch(relative, pattern) and relative.count("/") ==
                   pattern.count("/") for pattern in patterns), f"{relative} is not package data"


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_each_dashboard_module_is_short_and_says_its_job(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 500
    assert ast.get_docstring(ast.parse(text)), f"{path.name} has no docstring"
