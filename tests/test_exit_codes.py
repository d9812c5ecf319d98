"""One exit-code table for every client command: the code, `seer --help` and
the README say the same."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seer.cli import common
from seer.client import Outcome, Result

README = Path(__file__).resolve().parent.parent / "README.md"
TABLE = {0: "applied", 1: "failed", 2: "refused", 3: "the controller could not be reached",
         4: "unconfirmed"}


def result(*statuses: str) -> Result:
    nodes = [f"n{i}" for i in range(len(statuses))]
    return Result("START X g", 1, nodes,
                  {n: Outcome(n, s) for n, s in zip(nodes, statuses) if s != "missing"})


@pytest.mark.parametrize("statuses, code", [
    (("applied", "applied"), common.EXIT_OK),
    (("applied", "skipped"), common.EXIT_OK),
    (("applied", "failed"), common.EXIT_FAILED),
    (("applied", "unconfirmed"), common.EXIT_UNCONFIRMED),
    (("applied", "missing"), common.EXIT_UNCONFIRMED),
    (("failed", "unconfirmed"), common.EXIT_FAILED),  # a failure says more
])
def test_each_kind_of_outcome_has_its_own_exit_code(statuses, code):
    assert common.outcome_exit_code(result(*statuses)) == code


def test_the_codes_are_distinct():
    codes = [common.EXIT_OK, common.EXIT_FAILED, common.EXIT_REFUSED, common.EXIT_UNREACHABLE,
             common.EXIT_UNCONFIRMED]
    assert sorted(codes) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("where", ["help", "README"])
def test_help_and_readme_state_the_same_table(where):
    text = common.EPILOG if where == "help" else README.read_text()
    for code, meaning in TABLE.items():
        assert re.search(rf"(^|\|)\s*`?{code}`?\s*(\||\s)\s*{re.escape(meaning)}", text, re.M), \
            f"{where}: exit code {code} ({meaning}) missing"
